"""Skillset sources: create, list, fetch, update, delete and refresh.

A source's listings are read from the network outside any transaction, then stored under the skillset's
lock with a revision bump (and a ``source`` event) when what the source brings changed, so every edge
reloads the skillset. Header values are encrypted at rest and never leave except in the snapshot the
edge receives over NATS.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import structlog
from msgspec import UNSET

from skillrelay_common import ids
from skillrelay_common.outbound import OutboundClient, TargetCache
from skillrelay_common.schemas.abilities import SourceDef
from skillrelay_registry import schemas, validation
from skillrelay_registry.errors import ConflictError, InvalidInput, NotFoundError, TooLarge
from skillrelay_registry.models import Skillset, Source
from skillrelay_registry.pagination import ListQuery, Page
from skillrelay_registry.repo import Repository
from skillrelay_registry.sources import assembly, checks
from skillrelay_registry.sources.headers import SourceHeaderBox
from skillrelay_registry.sources.openapi import DocumentInvalid, read_tools, server_url
from skillrelay_registry.sources.reader import SourceReader, SourceUnreadable
from skillrelay_registry.sources.schemas import SourceCreate, SourceOut, SourceStatus, SourceUpdate
from skillrelay_registry.usecases.base import (
    UseCaseBase,
    child,
    child_fetch,
    ensure_skillset_fits,
    own_snapshot,
    owned,
    skillset_event,
)

_log = structlog.get_logger("skillrelay.registry.sources")
# Edge replicas watching one upstream each hear its resources/updated: notices this close are one.
_RESOURCE_NOTICE_SECONDS = 1.0


@dataclass
class _Config:
    """What decides how a source is read (a change to any of it means reading it again)."""

    type: str
    url: str | None
    document: dict[str, Any] | None
    base_url: str | None
    headers: dict[str, str]
    timeout_ms: int


@dataclass
class _Read:
    catalog: dict[str, Any] | None
    error: str | None


class SourceUseCases(UseCaseBase):
    _source_reader_instance: SourceReader | None = None
    _refreshing: set[str] | None = None
    _refresh_tasks: set[asyncio.Task[None]] | None = None
    _resource_notices: dict[tuple[str, str], float] | None = None

    # -- REST ------------------------------------------------------------------------------------

    async def create_source(self, owner_id: str, skillset_id: str, data: SourceCreate) -> schemas.Created:
        config = _Config(
            type=data.type,
            url=data.url,
            document=data.document,
            base_url=data.base_url,
            headers=checks.headers(data.headers),
            timeout_ms=data.timeout_ms,
        )
        _check_config(config)
        include = checks.name_patterns(data.include, "include")
        exclude = checks.name_patterns(data.exclude, "exclude")
        prefix = checks.prefix(data.prefix)
        name = validation.require_name(data.name) if data.name is not None else _default_name(config)
        await self._require_skillset(owner_id, skillset_id)
        source_id = ids.new_id(ids.SOURCE)
        read = await self._read(source_id, name, config)
        title = (read.catalog or {}).get("title")
        if data.name is None and config.document is None and isinstance(title, str) and title.strip():
            name = title.strip()
        now = self._clock()
        row = Source(
            id=source_id,
            owner_id=owner_id,
            skillset_id=skillset_id,
            type=config.type,
            name=name,
            url=config.url,
            base_url=config.base_url,
            document=config.document,
            headers_encrypted=self._encrypt_headers(config.headers),
            header_names=sorted(config.headers),
            include=include,
            exclude=exclude,
            prefix=prefix,
            timeout_ms=config.timeout_ms,
            catalog=read.catalog or {},
            last_refresh_at=now,
            last_error=read.error,
            next_refresh_at=self._next_refresh(now),
            meta=data.meta,
            created_at=now,
            updated_at=now,
        )
        async with self._unit() as repo:
            await self._skillset_for_change(repo, owner_id, skillset_id)
            count = len(await repo.children(Source, skillset_id))
            if count >= checks.MAX_SOURCES_PER_SKILLSET:
                raise ConflictError(f"a skillset may have at most {checks.MAX_SOURCES_PER_SKILLSET} sources")
            repo.add(row)
            await repo.flush()
            revision = await self._bump_revision_if_it_fits(repo, skillset_id, now)
        await self._publish(
            [skillset_event(skillset_id, owner_id, "created", "source", row.id, None, revision)]
        )
        return schemas.Created(id=row.id)

    async def list_sources(self, owner_id: str, skillset_id: str, query: ListQuery) -> Page[SourceOut]:
        to_out = await self._with_warnings(owner_id, skillset_id)
        return await self._page(child_fetch(Source, skillset_id), query, to_out)

    async def stream_sources(
        self, owner_id: str, skillset_id: str, query: ListQuery
    ) -> AsyncIterator[SourceOut]:
        to_out = await self._with_warnings(owner_id, skillset_id)
        return self._stream(child_fetch(Source, skillset_id), query, to_out)

    async def get_source(self, owner_id: str, skillset_id: str, source_id: str) -> SourceOut:
        async with self._unit() as repo:
            skillset = await owned(repo, Skillset, owner_id, skillset_id, "skillset")
            row = await child(repo, Source, skillset_id, source_id, "source")
            return source_out(row, (await source_warnings(repo, skillset)).get(row.id, []))

    async def _with_warnings(self, owner_id: str, skillset_id: str) -> Callable[[Source], SourceOut]:
        """``source_out`` with each source's warnings (what a name clash leaves out) as of now."""
        async with self._unit() as repo:
            warnings = await source_warnings(
                repo, await owned(repo, Skillset, owner_id, skillset_id, "skillset")
            )
        return lambda row: source_out(row, warnings.get(row.id, []))

    async def update_source(
        self, owner_id: str, skillset_id: str, source_id: str, data: SourceUpdate
    ) -> schemas.Created:
        async with self._unit() as repo:
            await owned(repo, Skillset, owner_id, skillset_id, "skillset")
            row = await child(repo, Source, skillset_id, source_id, "source")
            config = self._config_of(row)
        before = replace(config)
        if data.url is not UNSET:
            config.url = data.url
        if data.document is not UNSET:
            config.document = data.document
        if data.base_url is not UNSET:
            config.base_url = data.base_url
        if data.headers is not UNSET:
            config.headers = checks.headers(data.headers)
        if data.timeout_ms is not UNSET:
            config.timeout_ms = data.timeout_ms
        _check_config(config)
        name = validation.require_name(data.name) if data.name is not UNSET else None
        include = checks.name_patterns(data.include, "include") if data.include is not UNSET else None
        exclude = checks.name_patterns(data.exclude, "exclude") if data.exclude is not UNSET else None
        prefix = checks.prefix(data.prefix) if data.prefix is not UNSET else None
        read = await self._read(source_id, name or row.name, config) if config != before else None
        now = self._clock()
        async with self._unit() as repo:
            await self._skillset_for_change(repo, owner_id, skillset_id)
            row = await child(repo, Source, skillset_id, source_id, "source")
            if name is not None:
                row.name = name
            if include is not None:
                row.include = include
            if exclude is not None:
                row.exclude = exclude
            if prefix is not None:
                row.prefix = prefix
            if data.meta is not UNSET:
                row.meta = data.meta
            row.url, row.document, row.base_url = config.url, config.document, config.base_url
            row.timeout_ms = config.timeout_ms
            if data.headers is not UNSET:
                row.headers_encrypted = self._encrypt_headers(config.headers)
                row.header_names = sorted(config.headers)
            if read is not None:
                if read.catalog is not None:
                    row.catalog = read.catalog
                row.last_refresh_at, row.last_error = now, read.error
            row.updated_at = now
            await repo.flush()
            revision = await self._bump_revision_if_it_fits(repo, skillset_id, now)
        await self._publish(
            [skillset_event(skillset_id, owner_id, "updated", "source", source_id, None, revision)]
        )
        return schemas.Created(id=source_id)

    async def delete_source(self, owner_id: str, skillset_id: str, source_id: str) -> schemas.Created:
        now = self._clock()
        async with self._unit() as repo:
            await self._skillset_for_change(repo, owner_id, skillset_id)
            row = await child(repo, Source, skillset_id, source_id, "source")
            await repo.delete(row)
            revision = await repo.bump_revision(skillset_id, now)
        await self._publish(
            [skillset_event(skillset_id, owner_id, "deleted", "source", source_id, None, revision)]
        )
        return schemas.Created(id=source_id)

    async def refresh_source(self, owner_id: str, skillset_id: str, source_id: str) -> SourceOut:
        """Read the source's listings again now; the answer is the source with its new status."""
        async with self._unit() as repo:
            await owned(repo, Skillset, owner_id, skillset_id, "skillset")
            await child(repo, Source, skillset_id, source_id, "source")
        refreshed = await self.refresh_source_by_id(source_id)
        if refreshed is None:
            raise NotFoundError("source")
        return refreshed

    # -- refresh (REST, NATS, periodic) ----------------------------------------------------------

    async def refresh_source_by_id(self, source_id: str) -> SourceOut | None:
        """Read and store a source's listings; None when the source no longer exists."""
        async with self._unit() as repo:
            row = await repo.session.get(Source, source_id)
            if row is None:
                return None
            config, name = self._config_of(row), row.name
        read = await self._read(source_id, name, config, strict=False)
        now = self._clock()
        async with self._unit() as repo:
            row = await repo.session.get(Source, source_id)
            if row is None:
                return None
            skillset_id, owner_id = row.skillset_id, row.owner_id
            await self._skillset_for_change(repo, owner_id, skillset_id)
            await repo.session.refresh(row)
            changed = read.catalog is not None and read.catalog != row.catalog
            row.last_refresh_at, row.last_error = now, read.error
            row.next_refresh_at = self._next_refresh(now)
            revision = None
            if changed:
                old = row.catalog
                row.catalog = cast(dict[str, Any], read.catalog)
                await repo.flush()
                try:
                    await ensure_skillset_fits(repo, skillset_id)
                except TooLarge as exc:
                    row.catalog, row.last_error = old, exc.message
                else:
                    revision = await repo.bump_revision(skillset_id, now)
            skillset = await repo.skillset(skillset_id)
            warnings = await source_warnings(repo, skillset) if skillset is not None else {}
            result = source_out(row, warnings.get(row.id, []))
        if revision is not None:
            await self._publish(
                [skillset_event(skillset_id, owner_id, "updated", "source", source_id, None, revision)]
            )
        _log.info(
            "registry.source.refreshed", source_id=source_id, changed=revision is not None, error=read.error
        )
        return result

    async def resource_updated(self, source_id: str, uri: str) -> bool:
        """An edge heard ``resources/updated`` from the source's upstream: a ``resource`` ``updated``
        event (no revision bump: the skillset is unchanged) tells every edge replica, whose clients
        subscribed to ``uri`` are notified. False when the source is gone or does not bring ``uri``.
        Every replica that watches the upstream hears the same notice: repeats within
        ``_RESOURCE_NOTICE_SECONDS`` are one."""
        async with self._unit() as repo:
            row = await repo.session.get(Source, source_id)
            if row is None:
                return False
            resources = (row.catalog or {}).get("resources") or []
            if not any(isinstance(item, dict) and item.get("uri") == uri for item in resources):
                return False
            skillset = await repo.skillset(row.skillset_id)
            if skillset is None:
                return False
            skillset_id, owner_id, revision = skillset.id, skillset.owner_id, skillset.revision
        now = asyncio.get_running_loop().time()
        if self._resource_notices is None:
            self._resource_notices = {}
        last = self._resource_notices.get((source_id, uri))
        if last is not None and now - last < _RESOURCE_NOTICE_SECONDS:
            return True
        if len(self._resource_notices) > 10_000:
            self._resource_notices.clear()
        self._resource_notices[(source_id, uri)] = now
        item_id = f"{source_id}:{uri}"
        await self._publish(
            [skillset_event(skillset_id, owner_id, "updated", "resource", item_id, uri, revision)]
        )
        return True

    def refresh_soon(self, source_id: str) -> None:
        """Refresh in the background (an edge heard ``list_changed``); one at a time per source."""
        if self._refreshing is None or self._refresh_tasks is None:
            self._refreshing, self._refresh_tasks = set(), set()
        if source_id in self._refreshing:
            return
        self._refreshing.add(source_id)
        task = asyncio.get_running_loop().create_task(self._refresh_in_background(source_id))
        self._refresh_tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._refresh_tasks.discard)

    async def source_exists(self, source_id: str) -> bool:
        async with self._unit() as repo:
            return await repo.session.get(Source, source_id) is not None

    async def refresh_due_sources(self, limit: int = 20) -> int:
        """Refresh sources whose time has come, claimed so that two registry replicas never both do."""
        now = self._clock()
        async with self._unit() as repo:
            due = await repo.claim_due_sources(now, self._next_refresh(now), limit)
        for source_id in due:
            try:
                await self.refresh_source_by_id(source_id)
            except Exception:
                _log.exception("registry.source.refresh_failed", source_id=source_id)
        return len(due)

    async def close_sources(self) -> None:
        for task in list(self._refresh_tasks or ()):
            task.cancel()
        if self._source_reader_instance is not None:
            await self._source_reader_instance.close()

    # -- helpers ---------------------------------------------------------------------------------

    async def _refresh_in_background(self, source_id: str) -> None:
        try:
            await self.refresh_source_by_id(source_id)
        except Exception:
            _log.exception("registry.source.refresh_failed", source_id=source_id)
        finally:
            if self._refreshing is not None:
                self._refreshing.discard(source_id)

    async def _read(self, source_id: str, name: str, config: _Config, *, strict: bool = True) -> _Read:
        """The source's catalog, or the error to show as its status. A document that is no OpenAPI
        document, or a URL the guard will never call, is the owner's to fix: 400 when ``strict`` (a
        create or update), the source's error otherwise (a refresh: nobody is there to answer)."""
        try:
            return await self._read_checked(source_id, name, config)
        except InvalidInput as exc:
            if strict:
                raise
            return _Read(None, exc.message)

    async def _read_checked(self, source_id: str, name: str, config: _Config) -> _Read:
        if config.type == "openapi" and config.document is not None:
            try:
                read_tools(config.document)
            except DocumentInvalid as exc:
                raise InvalidInput(f"document: {exc}") from None
        source = SourceDef(
            id=source_id,
            type="openapi" if config.type == "openapi" else "mcp",
            name=name,
            url=config.url,
            base_url=config.base_url,
            headers=config.headers,
            timeout_ms=config.timeout_ms,
        )
        try:
            catalog = await self._source_reader.read(source, config.document)
        except SourceUnreadable as exc:
            if exc.refused:
                raise InvalidInput(exc.message) from None
            return _Read(None, exc.message)
        if config.type == "openapi" and config.base_url is None and "baseUrl" not in catalog:
            raise InvalidInput("baseUrl is needed: the document names no absolute server URL")
        return _Read(catalog, None)

    @property
    def _source_reader(self) -> SourceReader:
        if self._source_reader_instance is None:
            allow = self._settings.allow_private_http_targets
            client = OutboundClient(TargetCache(allow_private=allow), max_connections_per_upstream=4)
            self._source_reader_instance = SourceReader(client, allow_private=allow)
        return self._source_reader_instance

    def _encrypt_headers(self, headers: dict[str, str]) -> str | None:
        return SourceHeaderBox(self._settings.secret_key).encrypt(headers)

    def _config_of(self, row: Source) -> _Config:
        return _Config(
            type=row.type,
            url=row.url,
            document=row.document,
            base_url=row.base_url,
            headers=SourceHeaderBox(self._settings.secret_key).headers_of(row),
            timeout_ms=row.timeout_ms,
        )

    def _next_refresh(self, now: Any) -> Any:
        seconds = self._settings.source_refresh_seconds
        return now + timedelta(seconds=seconds) if seconds > 0 else None


def _check_config(config: _Config) -> None:
    if config.type == "mcp":
        if config.url is None:
            raise InvalidInput("url is required for an mcp source")
        if config.document is not None or config.base_url is not None:
            raise InvalidInput("document and baseUrl are for openapi sources only")
        checks.upstream_url(config.url, "url")
        return
    if (config.document is None) == (config.url is None):
        raise InvalidInput("an openapi source needs either document or url (not both)")
    if config.url is not None:
        checks.upstream_url(config.url, "url")
    if config.base_url is not None:
        checks.upstream_url(config.base_url, "baseUrl")
    if config.document is not None and config.base_url is None and server_url(config.document) is None:
        raise InvalidInput("baseUrl is needed: the document names no absolute server URL")


def _default_name(config: _Config) -> str:
    if config.document is not None:
        info = config.document.get("info")
        title = info.get("title") if isinstance(info, dict) else None
        if isinstance(title, str) and title.strip():
            return title.strip()[: validation.MAX_NAME_LENGTH]
    return urlsplit(config.url or config.base_url or "").hostname or config.type


def source_status(row: Source) -> SourceStatus:
    if row.last_error is not None:
        return "error"
    return "ok" if row.last_refresh_at is not None else "pending"


async def source_warnings(repo: Repository, skillset: Skillset) -> dict[str, list[str]]:
    """Per source id: its items a name clash leaves out of the skillset (``assembly.clashes``)."""
    return assembly.clashes(await own_snapshot(repo, skillset), await repo.children(Source, skillset.id))


def source_out(row: Source, warnings: list[str] | None = None) -> SourceOut:
    tools, resources, prompts = assembly.exposed_names(row)
    return SourceOut(
        id=row.id,
        skillset_id=row.skillset_id,
        type="openapi" if row.type == "openapi" else "mcp",
        name=row.name,
        status=source_status(row),
        header_names=list(row.header_names),
        include=list(row.include),
        exclude=list(row.exclude),
        prefix=row.prefix,
        timeout_ms=row.timeout_ms,
        has_document=row.document is not None,
        tools=tools,
        resources=resources,
        prompts=prompts,
        meta=row.meta,
        created_at=row.created_at,
        updated_at=row.updated_at,
        url=row.url,
        base_url=row.base_url or row.catalog.get("baseUrl"),
        last_refresh_at=row.last_refresh_at,
        last_error=row.last_error,
        warnings=warnings or [],
    )
