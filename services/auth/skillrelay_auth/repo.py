"""PostgreSQL storage of the auth service (SQLAlchemy Core over asyncpg)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from skillrelay_auth.models import static_tokens
from skillrelay_auth.static_tokens import StoredToken


def _now() -> datetime:
    return datetime.now(UTC)


class SqlStaticTokenStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, integration_id: str) -> StoredToken | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(static_tokens.c.token_hash, static_tokens.c.version).where(
                        static_tokens.c.integration_id == integration_id
                    )
                )
            ).first()
        return None if row is None else StoredToken(integration_id, row.token_hash, row.version)

    async def insert(self, integration_id: str, token_hash: str) -> StoredToken | None:
        now = _now()
        statement = (
            insert(static_tokens)
            .values(
                integration_id=integration_id,
                token_hash=token_hash,
                version=1,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[static_tokens.c.integration_id])
            .returning(static_tokens.c.version)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else StoredToken(integration_id, token_hash, row.version)

    async def replace(self, integration_id: str, token_hash: str) -> StoredToken | None:
        statement = (
            update(static_tokens)
            .where(static_tokens.c.integration_id == integration_id, static_tokens.c.token_hash.is_not(None))
            .values(token_hash=token_hash, version=static_tokens.c.version + 1, updated_at=_now())
            .returning(static_tokens.c.version)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else StoredToken(integration_id, token_hash, row.version)

    async def revoke(self, integration_id: str) -> StoredToken | None:
        now = _now()
        statement = (
            update(static_tokens)
            .where(static_tokens.c.integration_id == integration_id)
            .values(
                token_hash=None, updated_at=now, revoked_at=func.coalesce(static_tokens.c.revoked_at, now)
            )
            .returning(static_tokens.c.version)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else StoredToken(integration_id, None, row.version)
