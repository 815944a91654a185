"""Integrations gain ``session_idle_minutes``: how long a session may stay unused (24 hours unless the
owner says otherwise).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "integrations",
        sa.Column("session_idle_minutes", sa.Integer, nullable=False, server_default=sa.text("1440")),
        schema="registry",
    )


def downgrade() -> None:
    op.drop_column("integrations", "session_idle_minutes", schema="registry")
