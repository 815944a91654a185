"""Messages answered and published by the sessions service."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from skillrelay_common.schemas.base import Message


class SessionInfo(Message, kw_only=True):
    session_id: str
    integration_id: str
    # "static:v<version>" for the static token, "oauth:<subject>" for an OAuth end user.
    principal: str
    created_at: float
    last_seen_at: float
    expires_at: float
    protocol_version: str | None = None
    # Protocol state every edge replica needs: client capabilities, log level, resource subscriptions.
    state: dict[str, Any] = msgspec.field(default_factory=dict)


class CreateSession(Message, kw_only=True):
    integration_id: str
    principal: str
    protocol_version: str | None = None
    state: dict[str, Any] = msgspec.field(default_factory=dict)
    # The integration's cap on live sessions: opening one more ends the least recently used.
    max_sessions: int | None = None
    # The integration's idle timeout (each use extends the session by this much); None: the service's.
    ttl_seconds: float | None = None


class GetSession(Message, kw_only=True):
    session_id: str


class TouchSessions(Message, kw_only=True):
    """Batched keep-alive: each id was used at or before ``seen_at``."""

    session_ids: list[str]
    seen_at: float


class UpdateSessionState(Message, kw_only=True):
    """Merge ``state`` into the session's state (top-level keys replace).

    ``add_items`` / ``remove_items`` change list-valued keys (e.g. resource subscriptions) atomically
    in the sessions service, so two replicas changing the same list at once lose neither change."""

    session_id: str
    state: dict[str, Any]
    protocol_version: str | None = None
    add_items: dict[str, list[str]] = msgspec.field(default_factory=dict)
    remove_items: dict[str, list[str]] = msgspec.field(default_factory=dict)


class CloseSession(Message, kw_only=True):
    session_id: str
    reason: str = "deleted"
    # When set, only a session of this integration is closed (another's answers NotFound).
    integration_id: str | None = None


class CloseSessions(Message, kw_only=True):
    """End every session of an integration, or only those of one principal."""

    integration_id: str
    principal: str | None = None
    reason: str = "revoked"


class SessionPosition(Message, kw_only=True):
    """Where a page of sessions ended: the sort key of its last session."""

    created_at: float
    session_id: str


class ListSessions(Message, kw_only=True):
    """One page of an integration's live sessions, ordered by ``(created_at, session_id)``.

    Listed sessions carry only a bounded ``clientInfo`` of their state (the whole can be 64 KB each):
    a page always fits in one NATS reply."""

    integration_id: str
    take: int = 100
    order: Literal["asc", "desc"] = "asc"
    after: SessionPosition | None = None


class SessionList(Message, kw_only=True):
    sessions: list[SessionInfo] = msgspec.field(default_factory=list)
    # Set when another page follows: the position of this page's last session.
    next: SessionPosition | None = None


class SessionsClosed(Message, kw_only=True):
    count: int


class SessionEvent(Message, kw_only=True):
    """Published on ``events.sessions.session.{opened,closed,expired}``."""

    session_id: str
    integration_id: str
    principal: str
    reason: str = ""


class CloseIdleSessions(Message, kw_only=True):
    """End every session of an integration not used for ``idle_seconds`` or more."""

    integration_id: str
    idle_seconds: float
    reason: str = "idle"


class CountSessions(Message, kw_only=True):
    """How many live sessions each integration has (the owner's list of MCP servers)."""

    integration_ids: list[str]


class SessionCounts(Message, kw_only=True):
    counts: dict[str, int] = msgspec.field(default_factory=dict)
