"""Worker credentials: what a worker process connects to NATS with (only the secret's SHA-256).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_credentials",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("owner_id", sa.String(80), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        schema="auth",
    )
    op.create_index(
        "ix_worker_credentials_owner", "worker_credentials", ["owner_id", "created_at"], schema="auth"
    )


def downgrade() -> None:
    op.drop_table("worker_credentials", schema="auth")
