"""The registry's records and request bodies as msgspec Structs, camelCase on the wire.

Inputs forbid unknown fields (a typo is a 400, not a silently ignored field). Update bodies use
``UNSET`` for "not given", so ``null`` can mean "remove" where the API allows it. The service takes
and returns these; the HTTP layer only decodes and encodes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from skillrelay_common.schemas.abilities import DynamicHandler, Handler
from skillrelay_common.schemas.registry import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_IDLE_MINUTES,
    MAX_SESSION_IDLE_MINUTES,
    MAX_SESSIONS_LIMIT,
)

SessionMode = Literal["strict", "renew"]
MaxSessions = Annotated[int, msgspec.Meta(ge=1, le=MAX_SESSIONS_LIMIT)]
# Minutes a session may stay unused before it ends (each use starts them again).
SessionIdleMinutes = Annotated[int, msgspec.Meta(ge=1, le=MAX_SESSION_IDLE_MINUTES)]
# An integration travels to the edge with its skillset in one NATS message: its own text stays small.
IntegrationDescription = Annotated[str, msgspec.Meta(max_length=64 * 1024)]
Meta = dict[str, Any]


class Body(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """Base of request bodies."""


class Record(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """Base of answers."""


class Created(Record):
    id: str


# --- users ---------------------------------------------------------------------------------------


class UserCreate(Body):
    name: str


class UserCreated(Record):
    id: str
    api_key: str


# --- blueprints ----------------------------------------------------------------------------------


class BlueprintCreate(Body):
    name: str
    description: str = ""
    meta: Meta = msgspec.field(default_factory=dict)


class BlueprintUpdate(Body):
    name: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    meta: Meta | UnsetType = UNSET


class BlueprintOut(Record):
    id: str
    name: str
    description: str
    meta: Meta
    created_at: datetime
    updated_at: datetime


# --- skillsets -----------------------------------------------------------------------------------


class SkillsetCreate(Body):
    name: str
    description: str = ""
    blueprint_id: str | None = None
    meta: Meta = msgspec.field(default_factory=dict)


class SkillsetUpdate(Body):
    name: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    blueprint_id: str | UnsetType | None = UNSET
    meta: Meta | UnsetType = UNSET


class SkillsetOut(Record):
    id: str
    name: str
    description: str
    meta: Meta
    revision: int
    created_at: datetime
    updated_at: datetime
    blueprint_id: str | None = None


# --- abilities, resources, prompts -----------------------------------------------------------------------


class SkillsetItemOut(Record):
    """What every ability, resource and prompt record shows."""

    id: str
    skillset_id: str
    name: str
    description: str
    meta: Meta
    created_at: datetime
    updated_at: datetime


class AbilityCreate(Body):
    name: str
    handler: Handler
    title: str | None = None
    description: str = ""
    input_schema: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "object"})
    output_schema: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None
    meta: Meta = msgspec.field(default_factory=dict)


class AbilityUpdate(Body):
    name: str | UnsetType = UNSET
    title: str | UnsetType | None = UNSET
    description: str | UnsetType = UNSET
    input_schema: dict[str, Any] | UnsetType = UNSET
    output_schema: dict[str, Any] | UnsetType | None = UNSET
    annotations: dict[str, Any] | UnsetType | None = UNSET
    handler: Handler | UnsetType = UNSET
    meta: Meta | UnsetType = UNSET


class AbilityOut(SkillsetItemOut):
    input_schema: dict[str, Any]
    handler: Handler
    title: str | None = None
    output_schema: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None


# --- resources -----------------------------------------------------------------------------------


class ResourceCreate(Body):
    name: str
    title: str | None = None
    description: str = ""
    uri: str | None = None
    uri_template: str | None = None
    mime_type: str | None = None
    text: str | None = None
    blob: str | None = None
    handler: DynamicHandler | None = None
    annotations: dict[str, Any] | None = None
    size: int | None = None
    meta: Meta = msgspec.field(default_factory=dict)


class ResourceUpdate(Body):
    name: str | UnsetType = UNSET
    title: str | UnsetType | None = UNSET
    description: str | UnsetType = UNSET
    uri: str | UnsetType | None = UNSET
    uri_template: str | UnsetType | None = UNSET
    mime_type: str | UnsetType | None = UNSET
    text: str | UnsetType | None = UNSET
    blob: str | UnsetType | None = UNSET
    handler: DynamicHandler | UnsetType | None = UNSET
    annotations: dict[str, Any] | UnsetType | None = UNSET
    size: int | UnsetType | None = UNSET
    meta: Meta | UnsetType = UNSET


class ResourceOut(SkillsetItemOut):
    title: str | None = None
    uri: str | None = None
    uri_template: str | None = None
    mime_type: str | None = None
    text: str | None = None
    blob: str | None = None
    handler: DynamicHandler | None = None
    annotations: dict[str, Any] | None = None
    size: int | None = None


# --- prompts -------------------------------------------------------------------------------------


class PromptArgumentIn(Body):
    name: str
    description: str = ""
    required: bool = False


class PromptMessageIn(Body):
    role: Literal["user", "assistant"]
    content: dict[str, Any]


class PromptCreate(Body):
    name: str
    title: str | None = None
    description: str = ""
    arguments: list[PromptArgumentIn] = msgspec.field(default_factory=list)
    messages: list[PromptMessageIn] = msgspec.field(default_factory=list)
    handler: DynamicHandler | None = None
    meta: Meta = msgspec.field(default_factory=dict)


class PromptUpdate(Body):
    name: str | UnsetType = UNSET
    title: str | UnsetType | None = UNSET
    description: str | UnsetType = UNSET
    arguments: list[PromptArgumentIn] | UnsetType = UNSET
    messages: list[PromptMessageIn] | UnsetType = UNSET
    handler: DynamicHandler | UnsetType | None = UNSET
    meta: Meta | UnsetType = UNSET


class PromptOut(SkillsetItemOut):
    arguments: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    title: str | None = None
    handler: DynamicHandler | None = None


# --- OAuth connections ---------------------------------------------------------------------------


class OAuthConnectionCreate(Body):
    """Either ``issuer`` (OIDC discovery) or ``authorizationUrl`` + ``tokenUrl`` (+ ``userinfoUrl``)."""

    name: str
    client_id: str
    client_secret: str
    description: str = ""
    scopes: list[str] = msgspec.field(default_factory=list)
    issuer: str | None = None
    authorization_url: str | None = None
    token_url: str | None = None
    userinfo_url: str | None = None
    meta: Meta = msgspec.field(default_factory=dict)


class OAuthConnectionUpdate(Body):
    name: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    client_id: str | UnsetType = UNSET
    client_secret: str | UnsetType = UNSET
    scopes: list[str] | UnsetType = UNSET
    issuer: str | UnsetType | None = UNSET
    authorization_url: str | UnsetType | None = UNSET
    token_url: str | UnsetType | None = UNSET
    userinfo_url: str | UnsetType | None = UNSET
    meta: Meta | UnsetType = UNSET


class OAuthConnectionOut(Record):
    """Never carries the client secret."""

    id: str
    name: str
    description: str
    client_id: str
    scopes: list[str]
    meta: Meta
    created_at: datetime
    updated_at: datetime
    issuer: str | None = None
    authorization_url: str | None = None
    token_url: str | None = None
    userinfo_url: str | None = None


# --- MCP server integrations ---------------------------------------------------------------------


class IntegrationCreate(Body):
    name: str
    skillset_id: str
    description: IntegrationDescription = ""
    blueprint_id: str | None = None
    o_auth_connection_id: str | None = None
    session_mode: SessionMode = "strict"
    max_sessions: MaxSessions = DEFAULT_MAX_SESSIONS
    session_idle_minutes: SessionIdleMinutes = DEFAULT_SESSION_IDLE_MINUTES
    meta: Meta = msgspec.field(default_factory=dict)


class IntegrationUpdate(Body):
    name: str | UnsetType = UNSET
    description: IntegrationDescription | UnsetType = UNSET
    skillset_id: str | UnsetType = UNSET
    blueprint_id: str | UnsetType | None = UNSET
    o_auth_connection_id: str | UnsetType | None = UNSET
    session_mode: SessionMode | UnsetType = UNSET
    max_sessions: MaxSessions | UnsetType = UNSET
    session_idle_minutes: SessionIdleMinutes | UnsetType = UNSET
    meta: Meta | UnsetType = UNSET


class IntegrationCreated(Record):
    """The only answer that ever carries the static access token."""

    id: str
    access_token: str
    endpoint: str


class TokenRotated(Record):
    id: str
    access_token: str


class IntegrationOut(Record):
    id: str
    name: str
    description: str
    skillset_id: str
    session_mode: SessionMode
    max_sessions: int
    session_idle_minutes: int
    endpoint: str
    meta: Meta
    created_at: datetime
    updated_at: datetime
    blueprint_id: str | None = None
    o_auth_connection_id: str | None = None


class SessionOut(Record):
    id: str
    principal: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    protocol_version: str | None = None
    # From the client's initialize (clientInfo), when it said.
    client_name: str | None = None
    client_version: str | None = None


class SessionListOut(Record):
    items: list[SessionOut]
    cursor: str | None = None


class SessionEndIdle(Body):
    """End the sessions not used for this many minutes or more (1 minute to 30 days)."""

    idle_minutes: Annotated[int, msgspec.Meta(ge=1, le=43_200)]


class SessionsEnded(Record):
    count: int


class EmptyBody(Body):
    """``{}`` for calls that take no input."""


# --- pages: ``cursor`` is absent on the last page ------------------------------------------------


class BlueprintPage(Record):
    items: list[BlueprintOut]
    cursor: str | None = None


class SkillsetPage(Record):
    items: list[SkillsetOut]
    cursor: str | None = None


class AbilityPage(Record):
    items: list[AbilityOut]
    cursor: str | None = None


class ResourcePage(Record):
    items: list[ResourceOut]
    cursor: str | None = None


class PromptPage(Record):
    items: list[PromptOut]
    cursor: str | None = None


class OAuthConnectionPage(Record):
    items: list[OAuthConnectionOut]
    cursor: str | None = None


class IntegrationPage(Record):
    items: list[IntegrationOut]
    cursor: str | None = None


# --- worker credentials (kept by the auth service; see docs/security.md) --------------------------


class WorkerCredentialCreate(Body):
    name: str


class WorkerCredentialIssued(Record):
    """The only answers that carry the credential (create and rotate)."""

    id: str
    credential: str


class WorkerCredentialOut(Record):
    id: str
    name: str
    created_at: str
    rotated_at: str | None = None


class WorkerCredentialPage(Record):
    """Every credential of the owner (at most 100), newest first."""

    items: list[WorkerCredentialOut]
