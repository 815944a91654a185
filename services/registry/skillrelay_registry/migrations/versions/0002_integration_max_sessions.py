"""Integrations gain ``max_sessions``: the most live 2025-era sessions they keep at once.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "integrations",
        sa.Column("max_sessions", sa.Integer, nullable=False, server_default=sa.text("1000")),
        schema="registry",
    )


def downgrade() -> None:
    op.drop_column("integrations", "max_sessions", schema="registry")
