"""An index for paging an integration's sessions by ``(created_at, id)`` and counting them at the cap.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_sessions_integration_page",
        "sessions",
        ["integration_id", "created_at", "id"],
        schema="sessions",
    )


def downgrade() -> None:
    op.drop_index("ix_sessions_integration_page", table_name="sessions", schema="sessions")
