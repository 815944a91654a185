"""What abilities, resources and prompts share: list, stream, fetch and delete, and the insert and
rename of an item whose name must be unique in its skillset. Each is driven by the item's
``ContentKind``; creating and updating, which differ by kind, live in the kind's own module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from msgspec import UNSET

from skillrelay_common import ids
from skillrelay_registry import schemas
from skillrelay_registry.errors import ConflictError
from skillrelay_registry.kinds import ContentKind, RecordT
from skillrelay_registry.models import Ability, Prompt, Skillset
from skillrelay_registry.pagination import ListQuery, Page
from skillrelay_registry.repo import Repository
from skillrelay_registry.usecases.base import (
    UseCaseBase,
    child,
    child_fetch,
    conflict_on_duplicate,
    owned,
    skillset_event,
)


def copy_given(row: Any, data: Any, fields: Iterable[str]) -> None:
    """Copy onto ``row`` each of ``fields`` that the update body ``data`` gives (is not ``UNSET``)."""
    for name in fields:
        value = getattr(data, name)
        if value is not UNSET:
            setattr(row, name, value)


class ContentUseCases(UseCaseBase):
    def _new_item(
        self, kind: ContentKind[Any, Any], owner_id: str, skillset_id: str, data: Any
    ) -> dict[str, Any]:
        """The columns every new ability, resource and prompt takes from its create body."""
        now = self._clock()
        return {
            "id": ids.new_id(kind.name),
            "owner_id": owner_id,
            "skillset_id": skillset_id,
            "name": data.name,
            "title": data.title,
            "description": data.description,
            "meta": data.meta,
            "created_at": now,
            "updated_at": now,
        }

    async def _update(
        self,
        kind: ContentKind[Any, Any],
        owner_id: str,
        skillset_id: str,
        item_id: str,
        merge: Callable[[Repository, Any], Awaitable[None]],
        *,
        duplicate: str,
    ) -> schemas.Created:
        """Change an item under its skillset's lock: ``merge`` applies the update body to the row
        (and may refuse it), then the skillset's revision is bumped and the event published."""
        now = self._clock()
        with conflict_on_duplicate(duplicate):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, skillset_id)
                row = await child(repo, kind.model, skillset_id, item_id, kind.name)
                await merge(repo, row)
                row.updated_at = now
                await repo.flush()
                revision = await self._bump_revision_if_it_fits(repo, skillset_id, now)
        await self._publish(
            [
                skillset_event(
                    skillset_id, owner_id, "updated", kind.name, item_id, kind.event_uri(row), revision
                )
            ]
        )
        return schemas.Created(id=item_id)

    async def list_content(
        self, kind: ContentKind[Any, RecordT], owner_id: str, skillset_id: str, query: ListQuery
    ) -> Page[RecordT]:
        await self._require_skillset(owner_id, skillset_id)
        return await self._page(child_fetch(kind.model, skillset_id), query, kind.to_record)

    async def stream_content(
        self, kind: ContentKind[Any, RecordT], owner_id: str, skillset_id: str, query: ListQuery
    ) -> AsyncIterator[RecordT]:
        await self._require_skillset(owner_id, skillset_id)
        return self._stream(child_fetch(kind.model, skillset_id), query, kind.to_record)

    async def get_content(
        self, kind: ContentKind[Any, RecordT], owner_id: str, skillset_id: str, item_id: str
    ) -> RecordT:
        async with self._unit() as repo:
            await owned(repo, Skillset, owner_id, skillset_id, "skillset")
            return kind.to_record(await child(repo, kind.model, skillset_id, item_id, kind.name))

    async def delete_content(
        self, kind: ContentKind[Any, Any], owner_id: str, skillset_id: str, item_id: str
    ) -> schemas.Created:
        """Remove the item under the skillset's lock, bump the skillset revision, then publish the
        event (a resource's carries its URI, so subscribers can be told)."""
        now = self._clock()
        async with self._unit() as repo:
            await self._skillset_for_change(repo, owner_id, skillset_id)
            row = await child(repo, kind.model, skillset_id, item_id, kind.name)
            uri = kind.event_uri(row)
            await repo.delete(row)
            revision = await repo.bump_revision(skillset_id, now)
        await self._publish(
            [skillset_event(skillset_id, owner_id, "deleted", kind.name, item_id, uri, revision)]
        )
        return schemas.Created(id=item_id)

    async def _insert_named(
        self, kind: ContentKind[Any, Any], owner_id: str, row: Ability | Prompt
    ) -> schemas.Created:
        """Add an ability or prompt whose name must be unique in its skillset: under the skillset's
        lock, refuse a duplicate (409), insert, bump the skillset revision, then publish the event."""
        model = type(row)
        duplicate = kind.duplicate(row.name)
        with conflict_on_duplicate(duplicate):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, row.skillset_id)
                if await repo.exists(
                    (model.skillset_id == row.skillset_id) & (model.name == row.name), model
                ):
                    raise ConflictError(duplicate)
                repo.add(row)
                await repo.flush()
                revision = await self._bump_revision_if_it_fits(repo, row.skillset_id, row.updated_at)
        await self._publish(
            [skillset_event(row.skillset_id, owner_id, "created", kind.name, row.id, None, revision)]
        )
        return schemas.Created(id=row.id)

    async def _rename(
        self, kind: ContentKind[Any, Any], repo: Repository, row: Ability | Prompt, name: str
    ) -> None:
        """Give an ability or prompt a new name, refusing (409) one already used in its skillset (the
        caller holds the skillset's lock)."""
        if name == row.name:
            return
        model = type(row)
        if await repo.exists((model.skillset_id == row.skillset_id) & (model.name == name), model):
            raise ConflictError(kind.duplicate(name))
        row.name = name
