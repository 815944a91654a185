"""Messages answered and published by the registry."""

from __future__ import annotations

from typing import Literal

import msgspec

from skillrelay_common.schemas.abilities import AbilityDef, PromptDef, ResourceDef, SourceDef
from skillrelay_common.schemas.base import Message

SessionMode = Literal["strict", "renew"]
# Live 2025-era sessions an integration keeps at once unless its ``maxSessions`` says otherwise.
DEFAULT_MAX_SESSIONS = 1000
MAX_SESSIONS_LIMIT = 10_000
# How long a session lives unused unless its integration says otherwise (24 hours), and the most allowed.
DEFAULT_SESSION_IDLE_MINUTES = 24 * 60
MAX_SESSION_IDLE_MINUTES = 30 * 24 * 60


class IntegrationInfo(Message, kw_only=True):
    """What the edge and auth need to know about an MCP server integration (never its token)."""

    id: str
    owner_id: str
    name: str
    description: str = ""
    skillset_id: str
    blueprint_id: str | None = None
    o_auth_connection_id: str | None = None
    # Bumped whenever oAuthConnectionId changes; JWTs carry it, so older JWTs stop verifying.
    oauth_generation: int = 0
    session_mode: SessionMode = "strict"
    # The most live 2025-era sessions at once; opening one more ends the least recently used.
    max_sessions: int = DEFAULT_MAX_SESSIONS
    # The integration's idle timeout: each use extends a session by this much (None: the sessions
    # service's own, 24 hours by default).
    session_ttl_seconds: float | None = None


class SkillsetSnapshot(Message, kw_only=True):
    """A skillset with everything it offers, as the edge serves it."""

    id: str
    name: str
    description: str = ""
    # Bumped on every change to the skillset or any of its abilities, resources or prompts.
    revision: int = 0
    abilities: list[AbilityDef] = msgspec.field(default_factory=list)
    resources: list[ResourceDef] = msgspec.field(default_factory=list)
    prompts: list[PromptDef] = msgspec.field(default_factory=list)
    # Where the abilities, resources and prompts with a source handler are forwarded to.
    sources: list[SourceDef] = msgspec.field(default_factory=list)


class RefreshSource(Message, kw_only=True):
    """Asks the registry to read a skillset source's listings again (an edge heard ``list_changed``
    from the upstream). Answered ``Ok`` once the refresh is under way, ``NotFound`` for no such source."""

    source_id: str


class SourceResourceUpdated(Message, kw_only=True):
    """An edge heard ``notifications/resources/updated`` from a source's upstream: the registry tells
    every edge replica (a ``resource`` ``updated`` event), whose clients subscribed to ``uri`` hear it.
    Answered ``Ok``, or ``NotFound`` when the source is gone or does not bring that resource."""

    source_id: str
    uri: str


class ResolveIntegration(Message, kw_only=True):
    integration_id: str


class IntegrationSnapshot(Message, kw_only=True):
    integration: IntegrationInfo
    skillset: SkillsetSnapshot


class GetOAuthConnection(Message, kw_only=True):
    connection_id: str


class OAuthConnectionSecret(Message, kw_only=True):
    """An OAuth connection with its decrypted client secret: for the auth service only, never logged."""

    id: str
    owner_id: str
    name: str
    client_id: str
    client_secret: str
    scopes: list[str] = msgspec.field(default_factory=list)
    issuer: str | None = None
    authorization_url: str | None = None
    token_url: str | None = None
    userinfo_url: str | None = None


ChangeKind = Literal["created", "updated", "deleted"]


class IntegrationChanged(Message, kw_only=True):
    """Published on ``events.registry.integration.{created,updated,deleted}``."""

    integration_id: str
    owner_id: str
    change: ChangeKind
    skillset_id: str | None = None
    # Names of the fields an update changed (camelCase, as in the REST API).
    fields: list[str] = msgspec.field(default_factory=list)


class SkillsetChanged(Message, kw_only=True):
    """Published on ``events.registry.{skillset,ability,resource,prompt,source}.{created,updated,deleted}``
    (a source is also ``updated`` when a refresh changed what it brings)."""

    skillset_id: str
    owner_id: str
    change: ChangeKind
    entity: Literal["skillset", "ability", "resource", "prompt", "source"]
    item_id: str | None = None
    # For resources: the URI, so the edge can send notifications/resources/updated to subscribers.
    uri: str | None = None
    revision: int = 0


class OwnedRecordChanged(Message, kw_only=True):
    """Published for users, blueprints and OAuth connections."""

    id: str
    owner_id: str
    change: ChangeKind
    entity: Literal["user", "blueprint", "oauthconnection"]
