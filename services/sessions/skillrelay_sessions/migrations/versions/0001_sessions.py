"""The sessions table: one row per live (or expired, not yet swept) MCP session.

Times are epoch seconds (double precision) so the service's injectable clock maps onto them directly.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("integration_id", sa.Text, nullable=False),
        sa.Column("principal", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float(precision=53), nullable=False),
        sa.Column("last_seen_at", sa.Float(precision=53), nullable=False),
        sa.Column("expires_at", sa.Float(precision=53), nullable=False),
        sa.Column("protocol_version", sa.Text, nullable=True),
        sa.Column("state", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        schema="sessions",
    )
    op.create_index(
        "ix_sessions_integration_principal", "sessions", ["integration_id", "principal"], schema="sessions"
    )
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"], schema="sessions")


def downgrade() -> None:
    op.drop_table("sessions", schema="sessions")
