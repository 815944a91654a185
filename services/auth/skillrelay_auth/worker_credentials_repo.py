"""PostgreSQL storage of worker credentials (SQLAlchemy Core over asyncpg)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from skillrelay_auth.models import worker_credentials as table
from skillrelay_auth.worker_credentials import StoredCredential


def _stored(row: Any) -> StoredCredential:
    return StoredCredential(row.id, row.owner_id, row.name, row.secret_hash, row.created_at, row.rotated_at)


class SqlWorkerCredentialStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def count(self, owner_id: str) -> int:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(func.count()).select_from(table).where(table.c.owner_id == owner_id)
            )
            return int(result.scalar_one())

    async def insert(self, credential: StoredCredential) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(table).values(
                    id=credential.id,
                    owner_id=credential.owner_id,
                    name=credential.name,
                    secret_hash=credential.secret_hash,
                    created_at=credential.created_at,
                )
            )

    async def list(self, owner_id: str) -> list[StoredCredential]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(table)
                .where(table.c.owner_id == owner_id)
                .order_by(table.c.created_at.desc(), table.c.id.desc())
            )
            return [_stored(row) for row in rows]

    async def get(self, credential_id: str) -> StoredCredential | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(table).where(table.c.id == credential_id))).first()
        return None if row is None else _stored(row)

    async def replace_secret(
        self, owner_id: str, credential_id: str, secret_hash: str, at: datetime
    ) -> StoredCredential | None:
        statement = (
            update(table)
            .where(table.c.id == credential_id, table.c.owner_id == owner_id)
            .values(secret_hash=secret_hash, rotated_at=at)
            .returning(*table.c)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _stored(row)

    async def delete(self, owner_id: str, credential_id: str) -> StoredCredential | None:
        statement = (
            delete(table).where(table.c.id == credential_id, table.c.owner_id == owner_id).returning(*table.c)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _stored(row)
