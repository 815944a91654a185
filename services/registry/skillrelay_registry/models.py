"""Tables of the registry (PostgreSQL schema ``registry``).

Every owned row carries ``owner_id`` so each query can be scoped to one owner; every listable table
has an index on ``(owner_id, created_at, id)`` for keyset pagination.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from skillrelay_common.schemas.registry import DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_IDLE_MINUTES

SCHEMA = "registry"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)
    type_annotation_map = {dict[str, Any]: JSONB, list[Any]: JSONB, datetime: DateTime(timezone=True)}


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    # SHA-256 of the API key (the key itself is shown once and never stored).
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Blueprint(Base):
    __tablename__ = "blueprints"
    __table_args__ = (Index("ix_blueprints_owner_page", "owner_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Skillset(Base):
    __tablename__ = "skillsets"
    __table_args__ = (Index("ix_skillsets_owner_page", "owner_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    blueprint_id: Mapped[str | None] = mapped_column(ForeignKey("blueprints.id", ondelete="SET NULL"))
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Bumped on every change to the skillset or anything in it; the edge compares revisions.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SkillsetItem:
    """The columns every ability, resource and prompt has (``name`` differs in length by kind)."""

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    skillset_id: Mapped[str] = mapped_column(ForeignKey("skillsets.id", ondelete="CASCADE"))
    title: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Ability(SkillsetItem, Base):
    __tablename__ = "abilities"
    __table_args__ = (
        UniqueConstraint("skillset_id", "name", name="uq_abilities_skillset_name"),
        Index("ix_abilities_skillset_page", "skillset_id", "created_at", "id"),
    )

    name: Mapped[str] = mapped_column(String(128))
    input_schema: Mapped[dict[str, Any]]
    output_schema: Mapped[dict[str, Any] | None]
    annotations: Mapped[dict[str, Any] | None]
    # The handler as its camelCase JSON (``skillrelay_common.schemas.abilities.Handler``).
    handler: Mapped[dict[str, Any]]


class Resource(SkillsetItem, Base):
    __tablename__ = "resources"
    __table_args__ = (
        Index(
            "uq_resources_skillset_uri",
            "skillset_id",
            "uri",
            unique=True,
            postgresql_where=text("uri IS NOT NULL"),
        ),
        Index(
            "uq_resources_skillset_uri_template",
            "skillset_id",
            "uri_template",
            unique=True,
            postgresql_where=text("uri_template IS NOT NULL"),
        ),
        Index("ix_resources_skillset_page", "skillset_id", "created_at", "id"),
    )

    name: Mapped[str] = mapped_column(Text)
    uri: Mapped[str | None] = mapped_column(Text)
    uri_template: Mapped[str | None] = mapped_column(Text)
    mime_type: Mapped[str | None] = mapped_column(Text)
    text_content: Mapped[str | None] = mapped_column("text", Text)
    blob: Mapped[str | None] = mapped_column(Text)
    handler: Mapped[dict[str, Any] | None]
    annotations: Mapped[dict[str, Any] | None]
    size: Mapped[int | None] = mapped_column(Integer)


class Prompt(SkillsetItem, Base):
    __tablename__ = "prompts"
    __table_args__ = (
        UniqueConstraint("skillset_id", "name", name="uq_prompts_skillset_name"),
        Index("ix_prompts_skillset_page", "skillset_id", "created_at", "id"),
    )

    name: Mapped[str] = mapped_column(Text)
    arguments: Mapped[list[Any]] = mapped_column(default=list)
    messages: Mapped[list[Any]] = mapped_column(default=list)
    handler: Mapped[dict[str, Any] | None]


class OAuthConnection(Base):
    __tablename__ = "oauth_connections"
    __table_args__ = (Index("ix_oauth_connections_owner_page", "owner_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    client_id: Mapped[str] = mapped_column(Text)
    # Fernet ciphertext (SecretBox purpose "oauth-client-secret"); never returned over REST.
    client_secret_encrypted: Mapped[str] = mapped_column(Text)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    issuer: Mapped[str | None] = mapped_column(Text)
    authorization_url: Mapped[str | None] = mapped_column(Text)
    token_url: Mapped[str | None] = mapped_column(Text)
    userinfo_url: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Integration(Base):
    """An MCP server integration. Its static token lives in the auth service, never here."""

    __tablename__ = "integrations"
    __table_args__ = (
        Index("ix_integrations_owner_page", "owner_id", "created_at", "id"),
        Index("ix_integrations_meta", "meta", postgresql_using="gin"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    # RESTRICT: a skillset or OAuth connection in use cannot vanish under an integration (409).
    skillset_id: Mapped[str] = mapped_column(ForeignKey("skillsets.id", ondelete="RESTRICT"))
    blueprint_id: Mapped[str | None] = mapped_column(ForeignKey("blueprints.id", ondelete="SET NULL"))
    oauth_connection_id: Mapped[str | None] = mapped_column(
        ForeignKey("oauth_connections.id", ondelete="RESTRICT")
    )
    oauth_generation: Mapped[int] = mapped_column(Integer, default=0)
    session_mode: Mapped[str] = mapped_column(String(16), default="strict")
    max_sessions: Mapped[int] = mapped_column(Integer, default=DEFAULT_MAX_SESSIONS)
    session_idle_minutes: Mapped[int] = mapped_column(Integer, default=DEFAULT_SESSION_IDLE_MINUTES)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Source(Base):
    """A skillset source: an upstream MCP server or an OpenAPI document whose listings (``catalog``,
    read on refresh) join the skillset. Its headers are encrypted; only their names are shown."""

    __tablename__ = "sources"
    __table_args__ = (
        Index("ix_sources_skillset_page", "skillset_id", "created_at", "id"),
        Index("ix_sources_next_refresh", "next_refresh_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    skillset_id: Mapped[str] = mapped_column(ForeignKey("skillsets.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    base_url: Mapped[str | None] = mapped_column(Text)
    # An OpenAPI document given inline (None when it is read from ``url``).
    document: Mapped[dict[str, Any] | None]
    # Fernet ciphertext of the headers as JSON (SecretBox purpose "source-headers"); never returned.
    headers_encrypted: Mapped[str | None] = mapped_column(Text)
    header_names: Mapped[list[Any]] = mapped_column(default=list)
    include: Mapped[list[Any]] = mapped_column(default=list)
    exclude: Mapped[list[Any]] = mapped_column(default=list)
    prefix: Mapped[str] = mapped_column(Text, default="")
    timeout_ms: Mapped[int] = mapped_column(Integer, default=30_000)
    # What the last successful refresh read: {"tools", "resources", "resourceTemplates", "prompts"}.
    catalog: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_refresh_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    next_refresh_at: Mapped[datetime | None]
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
