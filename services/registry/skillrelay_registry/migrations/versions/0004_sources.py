"""Skillset sources: upstream MCP servers and OpenAPI documents whose listings join a skillset.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _jsonb() -> postgresql.JSONB:
    return postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("skillset_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("base_url", sa.Text(), nullable=True),
        sa.Column("document", _jsonb(), nullable=True),
        sa.Column("headers_encrypted", sa.Text(), nullable=True),
        sa.Column("header_names", _jsonb(), nullable=False),
        sa.Column("include", _jsonb(), nullable=False),
        sa.Column("exclude", _jsonb(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("timeout_ms", sa.Integer(), nullable=False),
        sa.Column("catalog", _jsonb(), nullable=False),
        sa.Column("last_refresh_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_refresh_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("meta", _jsonb(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["registry.users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["skillset_id"], ["registry.skillsets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="registry",
    )
    op.create_index(
        "ix_sources_skillset_page", "sources", ["skillset_id", "created_at", "id"], schema="registry"
    )
    op.create_index("ix_sources_next_refresh", "sources", ["next_refresh_at"], schema="registry")


def downgrade() -> None:
    op.drop_table("sources", schema="registry")
