"""Migrations against a real PostgreSQL."""

from pathlib import Path

from sqlalchemy import text

from skillrelay_common.db import create_engine, database_ready, migrate
from skillrelay_common.settings import DatabaseSettings

MIGRATION = """
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

from alembic import op
import sqlalchemy as sa


def upgrade():
    op.create_table("things", sa.Column("id", sa.Text, primary_key=True), schema="demo")


def downgrade():
    op.drop_table("things", schema="demo")
"""


async def test_migrate_creates_schema_and_is_idempotent(database_url: str, tmp_path: Path) -> None:
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (versions / "0001_things.py").write_text(MIGRATION)
    engine = create_engine(DatabaseSettings(url=database_url))
    try:
        assert await database_ready(engine)
        await migrate(engine, "demo", tmp_path / "migrations")
        await migrate(engine, "demo", tmp_path / "migrations")
        async with engine.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM demo.alembic_version"))).scalar_one()
            count = (await conn.execute(text("SELECT count(*) FROM demo.things"))).scalar_one()
        assert version == "0001"
        assert count == 0
    finally:
        await engine.dispose()
