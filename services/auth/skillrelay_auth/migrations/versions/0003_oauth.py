"""OAuth 2.1 authorization server: clients, pending authorizations, codes, refresh tokens, signing keys,
contacts and consents.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "auth"


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("private_key", sa.Text, nullable=False),  # PEM, encrypted with SecretBox
        sa.Column("public_jwk", sa.JSON, nullable=False),
        _ts("created_at"),
        _ts("retired_at", True),
        schema=S,
    )
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(2048), primary_key=True),
        # NULL for client ID metadata documents (their URL is the id, valid at every issuer).
        sa.Column("integration_id", sa.String(80), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),  # "registered" | "metadata_document"
        sa.Column("client_secret_hash", sa.String(64), nullable=True),
        sa.Column("token_endpoint_auth_method", sa.String(32), nullable=False),
        sa.Column("redirect_uris", sa.JSON, nullable=False),
        sa.Column("grant_types", sa.JSON, nullable=False),
        sa.Column("client_name", sa.String(200), nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        _ts("created_at"),
        _ts("refreshed_at"),
        schema=S,
    )
    op.create_table(
        "authorization_requests",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("integration_id", sa.String(80), nullable=False),
        sa.Column("client_id", sa.String(2048), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=True),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("force_consent", sa.Boolean, nullable=False),
        sa.Column("upstream_state", sa.String(64), nullable=False, unique=True),
        sa.Column("upstream_verifier", sa.Text, nullable=False),  # encrypted
        sa.Column("upstream_nonce", sa.String(64), nullable=False),
        sa.Column("binding_hash", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("contact_id", sa.String(80), nullable=True),
        _ts("created_at"),
        _ts("expires_at"),
        schema=S,
    )
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("integration_id", sa.String(80), nullable=False),
        sa.Column("client_id", sa.String(2048), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("contact_id", sa.String(80), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("family_id", sa.String(64), nullable=False),
        _ts("expires_at"),
        _ts("used_at", True),
        schema=S,
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("family_id", sa.String(64), nullable=False, index=True),
        sa.Column("integration_id", sa.String(80), nullable=False, index=True),
        sa.Column("client_id", sa.String(2048), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("contact_id", sa.String(80), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        # The access token issued together with this refresh token (revoked with the family).
        sa.Column("access_jti", sa.String(64), nullable=False),
        _ts("access_expires_at"),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("used_at", True),
        _ts("revoked_at", True),
        schema=S,
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("owner_id", sa.String(80), nullable=False),
        sa.Column("connection_id", sa.String(80), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=True),
        sa.Column("name", sa.Text, nullable=True),
        _ts("first_seen_at"),
        _ts("last_seen_at"),
        sa.UniqueConstraint("connection_id", "subject"),
        schema=S,
    )
    op.create_table(
        "consents",
        sa.Column("integration_id", sa.String(80), primary_key=True),
        sa.Column("contact_id", sa.String(80), primary_key=True),
        sa.Column("client_id", sa.String(2048), primary_key=True),
        sa.Column("scope", sa.Text, nullable=False),
        _ts("granted_at"),
        schema=S,
    )


def downgrade() -> None:
    for table in (
        "consents",
        "contacts",
        "refresh_tokens",
        "authorization_codes",
        "authorization_requests",
        "oauth_clients",
        "signing_keys",
    ):
        op.drop_table(table, schema=S)
