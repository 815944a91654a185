"""Tables of the ``auth`` schema (SQLAlchemy Core; the migrations create them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA = "auth"

metadata = MetaData(schema=SCHEMA)

# One row per integration: only the SHA-256 of its static token and the token's version.
static_tokens = Table(
    "static_tokens",
    metadata,
    Column("integration_id", String(80), primary_key=True),
    Column("token_hash", String(64), nullable=True),  # NULL once revoked (the integration is gone)
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


def _ts(name: str, nullable: bool = False) -> Column[datetime]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _grant(*, user_known: bool, redirect: bool) -> list[Column[Any]]:
    """What an OAuth authorization is for, from its request through its code to its refresh tokens:
    the integration, the client (and where its code goes, with the PKCE challenge), the scope, the
    resource (RFC 8707), and the user (``subject`` at the upstream, and its contact) once known."""
    code = [
        Column("redirect_uri", Text, nullable=False),
        Column("code_challenge", String(128), nullable=False),
    ]
    return [
        Column("integration_id", String(80), nullable=False),
        Column("client_id", String(2048), nullable=False),
        *(code if redirect else []),
        Column("scope", Text, nullable=False),
        Column("resource", Text, nullable=False),
        Column("subject", Text, nullable=not user_known),
        Column("contact_id", String(80), nullable=not user_known),
    ]


signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_key", Text, nullable=False),
    Column("public_jwk", JSON, nullable=False),
    _ts("created_at"),
    _ts("retired_at", True),
)

oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(2048), primary_key=True),
    Column("integration_id", String(80), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("client_secret_hash", String(64), nullable=True),
    Column("token_endpoint_auth_method", String(32), nullable=False),
    Column("redirect_uris", JSON, nullable=False),
    Column("grant_types", JSON, nullable=False),
    Column("client_name", String(200), nullable=True),
    Column("metadata", JSON, nullable=False),
    _ts("created_at"),
    _ts("refreshed_at"),
    # When an authorization code was first issued to it: registrations never used are purged.
    _ts("used_at", True),
)

authorization_requests = Table(
    "authorization_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    *_grant(user_known=False, redirect=True),
    Column("state", Text, nullable=True),
    Column("force_consent", Boolean, nullable=False),
    Column("upstream_state", String(64), nullable=False, unique=True),
    Column("upstream_verifier", Text, nullable=False),
    Column("upstream_nonce", String(64), nullable=False),
    Column("binding_hash", String(64), nullable=False),
    _ts("created_at"),
    _ts("expires_at"),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    *_grant(user_known=True, redirect=True),
    Column("generation", Integer, nullable=False),
    Column("family_id", String(64), nullable=False),
    _ts("expires_at"),
    _ts("used_at", True),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("family_id", String(64), nullable=False),
    *_grant(user_known=True, redirect=False),
    Column("generation", Integer, nullable=False),
    Column("access_jti", String(64), nullable=False),
    _ts("access_expires_at"),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("used_at", True),
    _ts("revoked_at", True),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("owner_id", String(80), nullable=False),
    Column("connection_id", String(80), nullable=False),
    Column("subject", Text, nullable=False),
    Column("email", Text, nullable=True),
    Column("name", Text, nullable=True),
    _ts("first_seen_at"),
    _ts("last_seen_at"),
    UniqueConstraint("connection_id", "subject"),
)

consents = Table(
    "consents",
    metadata,
    Column("integration_id", String(80), primary_key=True),
    Column("contact_id", String(80), primary_key=True),
    Column("client_id", String(2048), primary_key=True),
    Column("scope", Text, nullable=False),
    _ts("granted_at"),
)

# Worker credentials (see skillrelay_worker.credential): only the SHA-256 of the secret.
worker_credentials = Table(
    "worker_credentials",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("owner_id", String(80), nullable=False),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    _ts("created_at"),
    _ts("rotated_at", True),
)
