"""What every use case shares: the transaction helper, event publishing after commit, paging and
streaming loops, ownership lookups and event constructors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import msgspec
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from skillrelay_common.crypto import SecretBox
from skillrelay_common.schemas.base import Message, Unavailable
from skillrelay_common.schemas.registry import (
    ChangeKind,
    OwnedRecordChanged,
    SkillsetChanged,
    SkillsetSnapshot,
)
from skillrelay_common.schemas.sessions import SessionInfo
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import OWNED_RECORD_CHANGED, SKILLSET_CHANGED, Endpoint, Event
from skillrelay_registry import convert, schemas
from skillrelay_registry.errors import ConflictError, NotFoundError, TooLarge
from skillrelay_registry.models import Ability, Base, Prompt, Resource, Skillset, Source
from skillrelay_registry.pagination import STREAM_BATCH, ListQuery, Page, assemble_page, position_of
from skillrelay_registry.repo import Repository
from skillrelay_registry.sources.assembly import with_sources

# The edge receives an integration with its whole skillset in one NATS message (1 MB by default):
# a skillset may grow to this many bytes (as sent), leaving room for the integration and headers.
SKILLSET_SNAPSHOT_LIMIT = 768 * 1024
_snapshot_encoder = msgspec.json.Encoder()

API_KEY_PREFIX = "sr_key"
_FOREIGN_KEY_VIOLATION = "23503"
OAUTH_SECRET_PURPOSE = "oauth-client-secret"

_log = structlog.get_logger("skillrelay.registry")

ReqT = TypeVar("ReqT", bound=Message)
RepT = TypeVar("RepT")
EvtT = TypeVar("EvtT", bound=Message)
RowT = TypeVar("RowT", bound=Base)
OutT = TypeVar("OutT")


class Messenger(Protocol):
    """What the service needs from NATS (``skillrelay_common.messaging.Bus`` is one)."""

    async def request(
        self, endpoint: Endpoint[ReqT, RepT], message: ReqT, *, timeout: float | None = None
    ) -> RepT | Unavailable: ...

    async def publish_event(
        self, event: Event[EvtT], payload: EvtT, *, subject: str | None = None, msg_id: str | None = None
    ) -> None: ...


@dataclass(frozen=True)
class PendingEvent:
    event: Event[Any]
    payload: Message
    subject: str


def utc_now() -> datetime:
    return datetime.now(UTC)


def epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@contextmanager
def conflict_on_duplicate(message: str) -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        if "unique" in str(exc.orig).lower() or "duplicate" in str(exc.orig).lower():
            raise ConflictError(message) from None
        raise


class UseCaseBase:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        bus: Messenger,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = session_factory
        self._bus = bus
        self._settings = settings
        self._clock = clock
        self._secrets = SecretBox(settings.secret_key or "", OAUTH_SECRET_PURPOSE)

    # -- plumbing --------------------------------------------------------------------------------

    @asynccontextmanager
    async def _unit(self) -> AsyncIterator[Repository]:
        """One transaction: committed when the block ends without an exception."""
        try:
            async with self._sessions() as session, session.begin():
                yield Repository(session)
        except IntegrityError as exc:
            # A referenced record vanished, or a record gained a reference, while we worked.
            if getattr(exc.orig, "sqlstate", None) == _FOREIGN_KEY_VIOLATION:
                raise ConflictError("a record this change refers to was changed meanwhile; retry") from None
            raise

    async def _publish(self, events: list[PendingEvent]) -> None:
        for pending in events:
            try:
                await self._bus.publish_event(pending.event, pending.payload, subject=pending.subject)
            except Exception as exc:  # the change is committed; subscribers resync on their own
                _log.error("registry.event.not_published", subject=pending.subject, error=str(exc))

    def _endpoint(self, integration_id: str) -> str:
        return convert.endpoint_url(self._settings.http.edge_public_url, integration_id)

    async def _page(
        self,
        fetch: Callable[[Repository, ListQuery, int], Awaitable[list[RowT]]],
        query: ListQuery,
        to_out: Callable[[RowT], OutT],
    ) -> Page[OutT]:
        async with self._unit() as repo:
            rows = await fetch(repo, query, query.take + 1)
            page = assemble_page(rows, query.take)
            return Page([to_out(row) for row in page.items], page.cursor)

    async def _stream(
        self,
        fetch: Callable[[Repository, ListQuery, int], Awaitable[list[RowT]]],
        query: ListQuery,
        to_out: Callable[[RowT], OutT],
    ) -> AsyncIterator[OutT]:
        """Every matching record, fetched in keyset batches (each its own short transaction), so
        memory stays constant and no connection is held while the client reads slowly."""
        batch_query = query
        while True:
            async with self._unit() as repo:
                rows = await fetch(repo, batch_query, STREAM_BATCH)
                records = [to_out(row) for row in rows]
            for record in records:
                yield record
            if len(rows) < STREAM_BATCH:
                return
            batch_query = query.next_batch(position_of(rows[-1]), STREAM_BATCH)

    async def _require_skillset(self, owner_id: str, skillset_id: str) -> None:
        async with self._unit() as repo:
            await owned(repo, Skillset, owner_id, skillset_id, "skillset")

    async def _bump_revision_if_it_fits(self, repo: Repository, skillset_id: str, now: datetime) -> int:
        """Bump the skillset's revision after a change that may grow it, unless the skillset as the
        edge receives it would then be larger than ``SKILLSET_SNAPSHOT_LIMIT`` (413: nothing changes)."""
        await ensure_skillset_fits(repo, skillset_id)
        return await repo.bump_revision(skillset_id, now)

    async def _skillset_for_change(self, repo: Repository, owner_id: str, skillset_id: str) -> Skillset:
        return await owned(repo, Skillset, owner_id, skillset_id, "skillset", lock=True)


# --- helpers ---------------------------------------------------------------------------------------


async def owned(
    repo: Repository, model: type[RowT], owner_id: str, record_id: str, what: str, *, lock: bool = False
) -> RowT:
    row = await repo.owned(model, owner_id, record_id, lock=lock)
    if row is None:
        raise NotFoundError(what)
    return row


async def child(repo: Repository, model: type[RowT], skillset_id: str, child_id: str, what: str) -> RowT:
    row = await repo.child(model, skillset_id, child_id)
    if row is None:
        raise NotFoundError(what)
    return row


def owned_fetch(
    model: type[RowT], owner_id: str
) -> Callable[[Repository, ListQuery, int], Awaitable[list[RowT]]]:
    async def fetch(repo: Repository, query: ListQuery, take: int) -> list[RowT]:
        return await repo.page(model, owner_id, query, take)

    return fetch


def child_fetch(
    model: type[RowT], skillset_id: str
) -> Callable[[Repository, ListQuery, int], Awaitable[list[RowT]]]:
    async def fetch(repo: Repository, query: ListQuery, take: int) -> list[RowT]:
        return await repo.child_page(model, skillset_id, query, take)

    return fetch


def owned_event(entity: Any, record_id: str, owner_id: str, change: ChangeKind) -> PendingEvent:
    return PendingEvent(
        OWNED_RECORD_CHANGED,
        OwnedRecordChanged(id=record_id, owner_id=owner_id, change=change, entity=entity),
        f"events.registry.{entity}.{change}",
    )


def skillset_event(
    skillset_id: str,
    owner_id: str,
    change: ChangeKind,
    entity: Any,
    item_id: str | None,
    uri: str | None,
    revision: int,
) -> PendingEvent:
    return PendingEvent(
        SKILLSET_CHANGED,
        SkillsetChanged(
            skillset_id=skillset_id,
            owner_id=owner_id,
            change=change,
            entity=entity,
            item_id=item_id,
            uri=uri,
            revision=revision,
        ),
        f"events.registry.{entity}.{change}",
    )


def reply_reason(reply: object) -> str:
    if isinstance(reply, Unavailable):
        return reply.message or "unavailable"
    return type(reply).__name__


def session_out(info: SessionInfo) -> schemas.SessionOut:
    client = info.state.get("clientInfo")
    client = client if isinstance(client, dict) else {}
    name, version = client.get("title") or client.get("name"), client.get("version")
    return schemas.SessionOut(
        id=info.session_id,
        principal=info.principal,
        protocol_version=info.protocol_version,
        created_at=epoch(info.created_at),
        last_seen_at=epoch(info.last_seen_at),
        expires_at=epoch(info.expires_at),
        client_name=name[:128] if isinstance(name, str) else None,
        client_version=version[:128] if isinstance(version, str) else None,
    )


async def own_snapshot(repo: Repository, skillset: Skillset) -> SkillsetSnapshot:
    """The skillset with its own abilities, resources and prompts (its sources' items not yet added)."""
    return convert.skillset_snapshot(
        skillset,
        await repo.children(Ability, skillset.id),
        await repo.children(Resource, skillset.id),
        await repo.children(Prompt, skillset.id),
    )


async def ensure_skillset_fits(repo: Repository, skillset_id: str) -> None:
    """Refuse (413) a skillset that would no longer fit the message that carries it to the edge:
    an integration the edge cannot resolve answers nothing but 503."""
    skillset = await repo.skillset(skillset_id)
    if skillset is None:
        return
    snapshot = with_sources(
        await own_snapshot(repo, skillset),
        await repo.children(Source, skillset_id),
        # A source's headers counted by their ciphertext, longer than the values: no key needed here.
        lambda source: {"headers": source.headers_encrypted or ""},
    )
    size = len(_snapshot_encoder.encode(snapshot))
    if size > SKILLSET_SNAPSHOT_LIMIT:
        raise TooLarge(
            f"the skillset would be {size} bytes with this change; at most {SKILLSET_SNAPSHOT_LIMIT} "
            "bytes of abilities, resources, prompts and sources' items fit one skillset "
            "(split it into several)"
        )
