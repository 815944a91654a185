"""Messages answered and published by the auth service, and the edge's revocation acknowledgements."""

from __future__ import annotations

from typing import Any

import msgspec

from skillrelay_common.schemas.base import Message


class IssueToken(Message, kw_only=True):
    """Mint the first static access token of a new integration."""

    integration_id: str


class RotateToken(Message, kw_only=True):
    """Replace the integration's token; answered only once no live edge replica accepts the old one."""

    integration_id: str


class RevokeToken(Message, kw_only=True):
    """Remove the integration's token for good (the integration is being deleted)."""

    integration_id: str


class TokenIssued(Message, kw_only=True):
    integration_id: str
    token: str
    version: int


class VerifyToken(Message, kw_only=True):
    integration_id: str
    token: str


class TokenValid(Message, kw_only=True):
    integration_id: str
    version: int


class GetJwks(Message, kw_only=True):
    pass


class Jwks(Message, kw_only=True):
    keys: list[dict[str, Any]] = msgspec.field(default_factory=list)


class TokenRevoked(Message, kw_only=True):
    """Published on ``events.auth.token.{rotated,revoked}``."""

    integration_id: str
    version: int


class InvalidateCredentials(Message, kw_only=True):
    """Broadcast to every edge replica: forget cached credentials of this integration, then ack."""

    integration_id: str
    reason: str = ""
    # Set when one OAuth access token (by its ``jti``) was revoked: replicas refuse it until ``exp``.
    revoked_jti: str | None = None
    revoked_jti_expires_at: float | None = None


class InvalidationAck(Message, kw_only=True):
    instance_id: str


class EdgeHeartbeat(Message, kw_only=True):
    """Published by every edge replica each second so auth knows whose acknowledgement to wait for."""

    instance_id: str
    sent_at: float


# --- Worker credentials (what a worker connects to NATS with; see skillrelay_common.bus_auth) ------


class WorkerCredentialInfo(Message, kw_only=True):
    """A worker credential without its secret."""

    id: str
    owner_id: str
    name: str
    created_at: str
    rotated_at: str | None = None


class CreateWorkerCredential(Message, kw_only=True):
    owner_id: str
    name: str


class WorkerCredentialIssued(Message, kw_only=True):
    """The only time the credential (``sr_worker_…``, holding its secret) is told."""

    info: WorkerCredentialInfo
    credential: str


class ListWorkerCredentials(Message, kw_only=True):
    owner_id: str


class WorkerCredentialList(Message, kw_only=True):
    items: list[WorkerCredentialInfo]


class GetWorkerCredential(Message, kw_only=True):
    owner_id: str
    credential_id: str


class RotateWorkerCredential(Message, kw_only=True):
    """A new secret; answered once the workers connected with the old one are disconnected."""

    owner_id: str
    credential_id: str


class DeleteWorkerCredential(Message, kw_only=True):
    """Remove for good; answered once the workers connected with it are disconnected."""

    owner_id: str
    credential_id: str


class WorkerCredentialChanged(Message, kw_only=True):
    """Event: a worker credential was created, rotated or deleted (never the secret)."""

    id: str
    owner_id: str
    name: str
    # Worker connections cut off by a rotation or deletion.
    disconnected: int = 0
