"""Every NATS subject of Skillrelay, defined once, with its message types.

Requests are ``<service>.<entity>.<verb>`` answered by the queue group named after the service.
Events are ``events.<service>.<entity>.<past-tense>`` on the JetStream stream of the producing service.
Audit records are ``audit.<integrationId>.<kind>`` on the ``AUDIT`` stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from skillrelay_common.schemas import auth, registry, sessions
from skillrelay_common.schemas.base import (
    Conflict,
    Denied,
    Invalid,
    Message,
    NotFound,
    Ok,
    Ping,
    Pong,
)

ReqT = TypeVar("ReqT", bound=Message)
RepT = TypeVar("RepT")
EvtT = TypeVar("EvtT", bound=Message)


@dataclass(frozen=True)
class Endpoint(Generic[ReqT, RepT]):
    """A request subject: who answers it, what it takes, and the union of what it may answer."""

    subject: str
    request: type[ReqT]
    reply: Any
    service: str
    # True: every instance answers (no queue group), e.g. cache invalidation on each edge replica.
    broadcast: bool = False
    description: str = ""


@dataclass(frozen=True)
class Event(Generic[EvtT]):
    """An event subject and its payload. ``subject`` may end in wildcards filled by ``publish``."""

    subject: str
    payload: type[EvtT]
    stream: str
    description: str = ""


@dataclass(frozen=True)
class Stream:
    """A JetStream stream; the producing service creates or updates it on start."""

    name: str
    subjects: tuple[str, ...]
    max_age_seconds: float = 7 * 24 * 3600
    max_bytes: int = 1024 * 1024 * 1024
    duplicate_window_seconds: float = 120.0
    # Copies kept in a NATS cluster (1 on a single server); audit uses up to 3 in docker-compose.
    replicas: int = 1

    def event(self, name: str, payload: type[EvtT], description: str = "") -> Event[EvtT]:
        """The event ``<prefix>.<name>`` on this stream, its prefix the stream's (``events.auth``)."""
        return Event(self.subjects[0].removesuffix(">") + name, payload, self.name, description)


def _endpoint(
    subject: str, request: type[ReqT], reply: Any, description: str = "", *, broadcast: bool = False
) -> Endpoint[ReqT, Any]:
    """The service answering a request subject is its first segment (``auth.token.issue``: auth)."""
    return Endpoint(subject, request, reply, subject.split(".")[0], broadcast, description)


# --- Streams -------------------------------------------------------------------------------------

REGISTRY_EVENTS = Stream("EVENTS_REGISTRY", ("events.registry.>",))
AUTH_EVENTS = Stream("EVENTS_AUTH", ("events.auth.>",))
SESSIONS_EVENTS = Stream("EVENTS_SESSIONS", ("events.sessions.>",))
STREAMS: tuple[Stream, ...] = (REGISTRY_EVENTS, AUTH_EVENTS, SESSIONS_EVENTS)

# --- Liveness (every service) --------------------------------------------------------------------


def _ping(service: str) -> Endpoint[Ping, Pong]:
    return _endpoint(f"{service}.service.ping", Ping, Pong, "liveness over NATS")


REGISTRY_PING = _ping("registry")
AUTH_PING = _ping("auth")
SESSIONS_PING = _ping("sessions")
EDGE_PING = _ping("edge")

# --- Registry -------------------------------------------------------------------------------------

REGISTRY_INTEGRATION_RESOLVE: Endpoint[
    registry.ResolveIntegration, registry.IntegrationSnapshot | NotFound
] = _endpoint(
    "registry.integration.resolve",
    registry.ResolveIntegration,
    registry.IntegrationSnapshot | NotFound,
    description="an integration with the snapshot of its skillset, for the edge and auth",
)
REGISTRY_SOURCE_REFRESH: Endpoint[registry.RefreshSource, Ok | NotFound] = _endpoint(
    "registry.source.refresh",
    registry.RefreshSource,
    Ok | NotFound,
    description="read a skillset source's listings again (an edge heard list_changed from its upstream)",
)
REGISTRY_SOURCE_RESOURCE_UPDATED: Endpoint[registry.SourceResourceUpdated, Ok | NotFound] = _endpoint(
    "registry.source.resource_updated",
    registry.SourceResourceUpdated,
    Ok | NotFound,
    description="a source's upstream said one of its resources changed (an edge heard resources/updated)",
)
REGISTRY_OAUTH_CONNECTION_GET: Endpoint[
    registry.GetOAuthConnection, registry.OAuthConnectionSecret | NotFound
] = _endpoint(
    "registry.oauthconnection.get",
    registry.GetOAuthConnection,
    registry.OAuthConnectionSecret | NotFound,
    description="an OAuth connection with its decrypted client secret, for auth only",
)

INTEGRATION_CREATED = REGISTRY_EVENTS.event("integration.created", registry.IntegrationChanged)
INTEGRATION_UPDATED = REGISTRY_EVENTS.event("integration.updated", registry.IntegrationChanged)
INTEGRATION_DELETED = REGISTRY_EVENTS.event("integration.deleted", registry.IntegrationChanged)
# entity is one of skillset, ability, resource, prompt, source; verb one of created, updated, deleted.
SKILLSET_CHANGED = REGISTRY_EVENTS.event(
    "*.*",
    registry.SkillsetChanged,
    "events.registry.<skillset|ability|resource|prompt|source>.<verb>",
)
OWNED_RECORD_CHANGED = REGISTRY_EVENTS.event(
    "*.*",
    registry.OwnedRecordChanged,
    "events.registry.<user|blueprint|oauthconnection>.<verb>",
)

# --- Auth -----------------------------------------------------------------------------------------

AUTH_TOKEN_ISSUE: Endpoint[auth.IssueToken, auth.TokenIssued | Conflict | Invalid] = _endpoint(
    "auth.token.issue",
    auth.IssueToken,
    auth.TokenIssued | Conflict | Invalid,
    description="mint the first static token of a new integration",
)
AUTH_TOKEN_ROTATE: Endpoint[auth.RotateToken, auth.TokenIssued | NotFound] = _endpoint(
    "auth.token.rotate",
    auth.RotateToken,
    auth.TokenIssued | NotFound,
    description="replace a static token; replies after every live edge replica dropped the old one",
)
AUTH_TOKEN_REVOKE: Endpoint[auth.RevokeToken, Ok | NotFound] = _endpoint(
    "auth.token.revoke",
    auth.RevokeToken,
    Ok | NotFound,
    description="remove a static token for good; replies after every live edge replica dropped it",
)
AUTH_TOKEN_VERIFY: Endpoint[auth.VerifyToken, auth.TokenValid | Denied] = _endpoint(
    "auth.token.verify",
    auth.VerifyToken,
    auth.TokenValid | Denied,
    description="check a static token (constant-time); the edge caches positive answers",
)
AUTH_JWKS_GET: Endpoint[auth.GetJwks, auth.Jwks] = _endpoint(
    "auth.jwks.get",
    auth.GetJwks,
    auth.Jwks,
    description="public signing keys for local JWT checks",
)

TOKEN_ROTATED = AUTH_EVENTS.event("token.rotated", auth.TokenRevoked)
TOKEN_REVOKED = AUTH_EVENTS.event("token.revoked", auth.TokenRevoked)

# Worker credentials: the registry's REST API asks auth, which keeps them and answers NATS's callout.
AUTH_WORKER_CREDENTIAL_CREATE: Endpoint[
    auth.CreateWorkerCredential, auth.WorkerCredentialIssued | Invalid | Conflict
] = _endpoint(
    "auth.workercredential.create",
    auth.CreateWorkerCredential,
    auth.WorkerCredentialIssued | Invalid | Conflict,
    description="a new worker credential of an owner (its secret is told only in this reply)",
)
AUTH_WORKER_CREDENTIAL_LIST: Endpoint[auth.ListWorkerCredentials, auth.WorkerCredentialList] = _endpoint(
    "auth.workercredential.list",
    auth.ListWorkerCredentials,
    auth.WorkerCredentialList,
    description="an owner's worker credentials, newest first, without secrets",
)
AUTH_WORKER_CREDENTIAL_GET: Endpoint[auth.GetWorkerCredential, auth.WorkerCredentialInfo | NotFound] = (
    _endpoint(
        "auth.workercredential.get",
        auth.GetWorkerCredential,
        auth.WorkerCredentialInfo | NotFound,
        description="one worker credential of an owner, without its secret",
    )
)
AUTH_WORKER_CREDENTIAL_ROTATE: Endpoint[
    auth.RotateWorkerCredential, auth.WorkerCredentialIssued | NotFound
] = _endpoint(
    "auth.workercredential.rotate",
    auth.RotateWorkerCredential,
    auth.WorkerCredentialIssued | NotFound,
    description="a new secret; replies once workers connected with the old one are disconnected",
)
AUTH_WORKER_CREDENTIAL_DELETE: Endpoint[auth.DeleteWorkerCredential, Ok | NotFound] = _endpoint(
    "auth.workercredential.delete",
    auth.DeleteWorkerCredential,
    Ok | NotFound,
    description="remove a worker credential; replies once its workers are disconnected",
)
WORKER_CREDENTIAL_CREATED = AUTH_EVENTS.event("workercredential.created", auth.WorkerCredentialChanged)
WORKER_CREDENTIAL_ROTATED = AUTH_EVENTS.event("workercredential.rotated", auth.WorkerCredentialChanged)
WORKER_CREDENTIAL_DELETED = AUTH_EVENTS.event("workercredential.deleted", auth.WorkerCredentialChanged)

# --- Edge (broadcast to every replica) -----------------------------------------------------------

EDGE_CREDENTIALS_INVALIDATE: Endpoint[auth.InvalidateCredentials, auth.InvalidationAck] = _endpoint(
    "edge.credentials.invalidate",
    auth.InvalidateCredentials,
    auth.InvalidationAck,
    broadcast=True,
    description="every edge replica drops cached credentials of an integration and acknowledges",
)
# Core NATS (not JetStream): liveness of edge replicas, so auth knows whose acknowledgement to await.
EDGE_HEARTBEAT_SUBJECT = "edge.presence.heartbeat"

# --- Sessions -------------------------------------------------------------------------------------

SESSIONS_CREATE: Endpoint[sessions.CreateSession, sessions.SessionInfo | Invalid] = _endpoint(
    "sessions.session.create",
    sessions.CreateSession,
    sessions.SessionInfo | Invalid,
)
SESSIONS_GET: Endpoint[sessions.GetSession, sessions.SessionInfo | NotFound] = _endpoint(
    "sessions.session.get",
    sessions.GetSession,
    sessions.SessionInfo | NotFound,
    description="a live (not expired, not closed) session",
)
SESSIONS_TOUCH: Endpoint[sessions.TouchSessions, Ok] = _endpoint(
    "sessions.session.touch",
    sessions.TouchSessions,
    Ok,
    description="batched sliding-expiry keep-alive from an edge replica",
)
SESSIONS_UPDATE_STATE: Endpoint[sessions.UpdateSessionState, sessions.SessionInfo | NotFound | Invalid] = (
    _endpoint(
        "sessions.session.update",
        sessions.UpdateSessionState,
        sessions.SessionInfo | NotFound | Invalid,
    )
)
SESSIONS_CLOSE: Endpoint[sessions.CloseSession, Ok | NotFound] = _endpoint(
    "sessions.session.close",
    sessions.CloseSession,
    Ok | NotFound,
)
SESSIONS_CLOSE_ALL: Endpoint[sessions.CloseSessions, sessions.SessionsClosed] = _endpoint(
    "sessions.session.closeall",
    sessions.CloseSessions,
    sessions.SessionsClosed,
)
SESSIONS_LIST: Endpoint[sessions.ListSessions, sessions.SessionList] = _endpoint(
    "sessions.session.list",
    sessions.ListSessions,
    sessions.SessionList,
)
SESSIONS_CLOSE_IDLE: Endpoint[sessions.CloseIdleSessions, sessions.SessionsClosed | Invalid] = _endpoint(
    "sessions.session.closeidle",
    sessions.CloseIdleSessions,
    sessions.SessionsClosed | Invalid,
    description="end an integration's sessions unused for a while (the owner's clean-up)",
)
SESSIONS_COUNT: Endpoint[sessions.CountSessions, sessions.SessionCounts | Invalid] = _endpoint(
    "sessions.session.count",
    sessions.CountSessions,
    sessions.SessionCounts | Invalid,
    description="live sessions per integration",
)

SESSION_OPENED = SESSIONS_EVENTS.event("session.opened", sessions.SessionEvent)
SESSION_CLOSED = SESSIONS_EVENTS.event("session.closed", sessions.SessionEvent)
SESSION_EXPIRED = SESSIONS_EVENTS.event("session.expired", sessions.SessionEvent)
# State changed (log level, subscriptions, capabilities): edge replicas drop their cached copy.
SESSION_UPDATED = SESSIONS_EVENTS.event("session.updated", sessions.SessionEvent)


def all_endpoints() -> list[Endpoint[Any, Any]]:
    """Every request endpoint defined in this module (the contract test checks each has one handler)."""
    return [value for value in globals().values() if isinstance(value, Endpoint)]


def all_events() -> list[Event[Any]]:
    return [value for value in globals().values() if isinstance(value, Event)]


# --- Edge replicas among themselves (the worker subjects are in ``skillrelay_worker.subjects``) --------
#   edge.relay.<edgeKey>                  ClientResponseRelayed: a client's answer to the holding edge
#   edge.replica.<edgeKey>.alive          any payload, answered by that edge replica while it runs
#   edge.upstream.<edgeKey>               ParkedAnswer -> ParkedStep: a 2026 client's answers to the
#                                         replica holding a 2025-session upstream's open request


def relay_subject(edge_key: str) -> str:
    return f"edge.relay.{edge_key}"


def parked_call_subject(edge_key: str) -> str:
    """Served by the edge replica whose key this is, for the upstream calls it holds parked."""
    return f"edge.upstream.{edge_key}"


def edge_liveness_subject(edge_key: str) -> str:
    """Answered by the edge replica whose key this is; "no responders" means it is gone."""
    return f"edge.replica.{edge_key}.alive"


# --- Audit (published by every service through skillrelay_common.audit.AuditRecorder) -------------

# Limits here are defaults; the recorder applies SKILLRELAY_AUDIT_MAX_AGE / _MAX_BYTES / _REPLICAS.
AUDIT_STREAM = Stream("AUDIT", ("audit.>",), max_age_seconds=30 * 24 * 3600, max_bytes=1024 * 1024 * 1024)
AUDIT_SUBJECT_PATTERN = "audit.<integrationId>.<kind>"


def audit_subject(integration_id: str, kind: str) -> str:
    """``audit.<integrationId>.<kind>``; the kind may itself contain dots (``tool.call``)."""
    return f"audit.{integration_id}.{kind}"


def audit_filter(integration_id: str | None) -> str:
    """The subject filter for every audit record of one integration (or of all of them)."""
    return f"audit.{integration_id}.>" if integration_id else "audit.>"


# --- MCP events (edge): SSE events kept so a client may resume on any edge replica ---------------

MCP_EVENTS = Stream("MCP_EVENTS", ("mcp.events.>",), max_age_seconds=15 * 60, max_bytes=256 * 1024 * 1024)


def mcp_events_subject(session_key: str, stream_id: str) -> str:
    """``mcp.events.<sessionKey>.<streamId>``: one SSE stream of one MCP session."""
    return f"mcp.events.{session_key}.{stream_id}"


def mcp_broadcast_subject(integration_key: str) -> str:
    """``mcp.events.integration.<integrationKey>``: notifications for every GET stream of one
    integration (``*/list_changed``, ``resources/updated``), stored once instead of once per session."""
    return f"mcp.events.integration.{integration_key}"


# Core NATS, every edge replica (one wildcard subscription each): live copies of session events, so a
# listening client is no JetStream consumer. The event's stream sequence travels in a header.
MCP_LIVE_WILDCARD = "mcp.live.>"


def mcp_live_subject(session_key: str, stream_id: str) -> str:
    """``mcp.live.<sessionKey>.<streamId>``: the live copy of an event stored on ``mcp_events_subject``."""
    return f"mcp.live.{session_key}.{stream_id}"


# Core NATS, every edge replica: a session's resource subscriptions changed (a JSON list of URIs).
MCP_SUBSCRIPTIONS_WILDCARD = "mcp.subscriptions.*"


def mcp_subscriptions_subject(session_key: str) -> str:
    return f"mcp.subscriptions.{session_key}"


# KV bucket (same retention as MCP_EVENTS): which replica holds a streamed call and what it asked, so
# another replica can adopt the call when the holder dies. Key ``<sessionKey>.<streamId>``.
MCP_CALLS_BUCKET = "MCP_CALLS"
MCP_CALLS_TTL_SECONDS = MCP_EVENTS.max_age_seconds


# KV bucket: tasks of the 2026-07-28 Tasks extension, key ``<taskId>``. An entry lives this long after
# its last change (so at least its ``ttlMs`` after creation); any edge replica reads and updates it.
MCP_TASKS_BUCKET = "MCP_TASKS"
MCP_TASKS_TTL_SECONDS = 3600


# Core NATS, every edge replica: a client's notifications/cancelled may reach another replica.
EDGE_CANCEL_SUBJECT = "edge.mcp.cancel"
