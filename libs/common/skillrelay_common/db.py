"""PostgreSQL helpers: one schema per service, Alembic migrations run on start, async engines."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from skillrelay_common.settings import DatabaseSettings


def sqlalchemy_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and select the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("SKILLRELAY_DATABASE_URL must be a postgresql:// URL")


def create_engine(settings: DatabaseSettings, **options: Any) -> AsyncEngine:
    options.setdefault("pool_size", settings.pool_size)
    options.setdefault("max_overflow", settings.pool_size)
    options.setdefault("pool_pre_ping", True)
    return create_async_engine(sqlalchemy_url(settings.require_url()), **options)


async def migrate(engine: AsyncEngine, schema: str, migrations_dir: Path) -> None:
    """Bring ``schema`` to the newest revision in ``migrations_dir`` (a folder holding ``versions/``).

    Replicas starting together take an advisory lock, so exactly one runs each migration.
    """
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(schema.encode())})
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.run_sync(_upgrade, schema, migrations_dir)


def _upgrade(connection: Connection, schema: str, migrations_dir: Path) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    script = ScriptDirectory.from_config(config)

    def upgrade(revision: Any, _context: Any) -> Any:
        return script._upgrade_revs("head", revision)

    with EnvironmentContext(config, script, fn=upgrade, destination_rev="head") as env:
        env.configure(connection=connection, version_table_schema=schema, transactional_ddl=True)
        with env.begin_transaction():
            env.run_migrations()


async def database_ready(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
