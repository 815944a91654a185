"""Mark when a registered client was first used, so registrations never used can be purged.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "oauth_clients", sa.Column("used_at", sa.DateTime(timezone=True), nullable=True), schema="auth"
    )
    # What exists already counts as used if anything refers to it; the rest is purged in its turn.
    op.execute(
        """
        UPDATE auth.oauth_clients AS c SET used_at = c.created_at
        WHERE EXISTS (SELECT 1 FROM auth.consents WHERE client_id = c.client_id)
           OR EXISTS (SELECT 1 FROM auth.refresh_tokens WHERE client_id = c.client_id)
           OR EXISTS (SELECT 1 FROM auth.authorization_codes WHERE client_id = c.client_id)
        """
    )
    op.create_index(
        "ix_oauth_clients_unused",
        "oauth_clients",
        ["created_at"],
        schema="auth",
        postgresql_where=sa.text("used_at IS NULL AND kind = 'registered'"),
    )


def downgrade() -> None:
    op.drop_index("ix_oauth_clients_unused", table_name="oauth_clients", schema="auth")
    op.drop_column("oauth_clients", "used_at", schema="auth")
