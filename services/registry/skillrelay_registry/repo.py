"""Database access of the registry: every query is scoped to an owner (or to a skillset already
checked to belong to that owner), so another owner's rows simply do not exist here."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Select, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from skillrelay_registry.models import (
    Ability,
    Base,
    Blueprint,
    Integration,
    OAuthConnection,
    Prompt,
    Resource,
    Skillset,
    Source,
    User,
)
from skillrelay_registry.pagination import ListQuery

M = TypeVar("M", bound=Base)

OwnedModel = type[Blueprint] | type[Skillset] | type[OAuthConnection] | type[Integration]
ChildModel = type[Ability] | type[Resource] | type[Prompt]


def keyset(stmt: Select[Any], model: Any, query: ListQuery, take: int) -> Select[Any]:
    """Order by ``(created_at, id)``, start after the cursor, apply the filters, fetch ``take`` rows."""
    key = tuple_(model.created_at, model.id)
    if query.after is not None:
        after = tuple_(query.after.created_at, query.after.id)
        stmt = stmt.where(key > after if query.order == "asc" else key < after)
    if query.blueprint_id is not None and hasattr(model, "blueprint_id"):
        stmt = stmt.where(model.blueprint_id == query.blueprint_id)
    for meta_filter in query.meta:
        path = meta_filter.path
        selected = model.meta[path[0]] if len(path) == 1 else model.meta[path]
        stmt = stmt.where(selected.astext == meta_filter.value)
    if query.order == "asc":
        stmt = stmt.order_by(model.created_at.asc(), model.id.asc())
    else:
        stmt = stmt.order_by(model.created_at.desc(), model.id.desc())
    return stmt.limit(take)


class Repository:
    """One unit of work's queries, on one ``AsyncSession`` (the caller owns the transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Base) -> None:
        self.session.add(row)

    async def flush(self) -> None:
        await self.session.flush()

    async def delete(self, row: Base) -> None:
        await self.session.delete(row)
        await self.session.flush()

    # -- users ---------------------------------------------------------------------------------

    async def user_by_key_hash(self, key_hash: str) -> User | None:
        result = await self.session.execute(select(User).where(User.api_key_hash == key_hash))
        return result.scalar_one_or_none()

    # -- owned records -------------------------------------------------------------------------

    async def owned(self, model: type[M], owner_id: str, record_id: str, *, lock: bool = False) -> M | None:
        table: Any = model
        stmt = select(table).where(table.id == record_id, table.owner_id == owner_id)
        if lock:
            stmt = stmt.with_for_update()
        result = await self.session.execute(stmt)
        return cast("M | None", result.scalar_one_or_none())

    async def page(self, model: type[M], owner_id: str, query: ListQuery, take: int) -> list[M]:
        table: Any = model
        stmt = keyset(select(table).where(table.owner_id == owner_id), table, query, take)
        return list((await self.session.execute(stmt)).scalars())

    # -- skillset contents ---------------------------------------------------------------------

    async def child(self, model: type[M], skillset_id: str, child_id: str) -> M | None:
        table: Any = model
        stmt = select(table).where(table.id == child_id, table.skillset_id == skillset_id)
        return cast("M | None", (await self.session.execute(stmt)).scalar_one_or_none())

    async def child_page(self, model: type[M], skillset_id: str, query: ListQuery, take: int) -> list[M]:
        table: Any = model
        stmt = keyset(select(table).where(table.skillset_id == skillset_id), table, query, take)
        return list((await self.session.execute(stmt)).scalars())

    async def children(self, model: type[M], skillset_id: str) -> list[M]:
        table: Any = model
        stmt = select(table).where(table.skillset_id == skillset_id).order_by(table.created_at, table.id)
        return list((await self.session.execute(stmt)).scalars())

    async def exists(self, condition: ColumnElement[bool], model: type[Base]) -> bool:
        stmt = select(func.count()).select_from(model).where(condition)
        return bool((await self.session.execute(stmt)).scalar_one())

    async def bump_revision(self, skillset_id: str, now: datetime) -> int:
        """The skillset's next revision, taken under the row lock so concurrent changes serialise."""
        stmt = (
            update(Skillset)
            .where(Skillset.id == skillset_id)
            .values(revision=Skillset.revision + 1, updated_at=now)
            .returning(Skillset.revision)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def count_integrations(self, condition: ColumnElement[bool]) -> int:
        stmt = select(func.count()).select_from(Integration).where(condition)
        return int((await self.session.execute(stmt)).scalar_one())

    async def claim_due_sources(self, now: datetime, next_at: datetime | None, limit: int) -> list[str]:
        """Sources due for a periodic refresh, moved to their next time in the same statement; rows
        another registry replica is claiming are skipped, so each is refreshed once."""
        due = (
            select(Source.id)
            .where(Source.next_refresh_at <= now)
            .order_by(Source.next_refresh_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        stmt = update(Source).where(Source.id.in_(due)).values(next_refresh_at=next_at).returning(Source.id)
        return list((await self.session.execute(stmt)).scalars())

    # -- unscoped lookups (NATS: the caller is another service, not an owner) ------------------

    async def integration(self, integration_id: str) -> Integration | None:
        return await self.session.get(Integration, integration_id)

    async def skillset(self, skillset_id: str) -> Skillset | None:
        return await self.session.get(Skillset, skillset_id)

    async def oauth_connection(self, connection_id: str) -> OAuthConnection | None:
        return await self.session.get(OAuthConnection, connection_id)
