"""Tables of the ``auth`` schema (SQLAlchemy Core; the migrations create them)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table

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
