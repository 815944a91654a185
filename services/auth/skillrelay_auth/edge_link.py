"""The auth service's side of the edge contract: heartbeats in, invalidation broadcasts out, events."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import structlog
from faststream.message import StreamMessage
from faststream.nats import NatsRouter

from skillrelay_auth.oauth_repo import RevokedAccess
from skillrelay_auth.presence import EdgePresence
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.auth import EdgeHeartbeat, InvalidateCredentials, TokenRevoked
from skillrelay_common.subjects import (
    EDGE_CREDENTIALS_INVALIDATE,
    EDGE_HEARTBEAT_SUBJECT,
    TOKEN_REVOKED,
    TOKEN_ROTATED,
    Event,
)

_log = structlog.get_logger("skillrelay.auth.edge_link")
_heartbeat_decoder = msgspec.json.Decoder(EdgeHeartbeat)

# How long a rotation waits for acknowledgements from live replicas.
ACK_TIMEOUT_SECONDS = 2.0
# An edge stops trusting its cache when its last NATS round trip is older than this (see the edge's
# credentials.TRUST_WINDOW_SECONDS); a replica that never acknowledged is waited out this long.
EDGE_TRUST_WINDOW_SECONDS = 2.0


class BusEdgeInvalidator:
    """Broadcasts ``EDGE_CREDENTIALS_INVALIDATE`` and waits for every live edge replica's ack."""

    def __init__(self, bus: Bus, presence: EdgePresence, *, ack_timeout: float = ACK_TIMEOUT_SECONDS) -> None:
        self._bus = bus
        self._presence = presence
        self._ack_timeout = ack_timeout

    async def invalidate(
        self,
        integration_id: str,
        reason: str,
        *,
        revoked_jti: str | None = None,
        revoked_jti_expires_at: float | None = None,
    ) -> None:
        warmup = self._presence.warming_up()
        if warmup:
            await asyncio.sleep(warmup)  # learn who is alive before deciding whose ack to await
        expected = self._presence.live()
        started = time.monotonic()
        acks = await self._bus.gather(
            EDGE_CREDENTIALS_INVALIDATE,
            InvalidateCredentials(
                integration_id=integration_id,
                reason=reason,
                revoked_jti=revoked_jti,
                revoked_jti_expires_at=revoked_jti_expires_at,
            ),
            expect=expected,
            timeout=self._ack_timeout,
        )
        missing = expected - set(acks)
        if missing:
            # A replica that did not answer either lost NATS (it has stopped trusting its cache) or is
            # stalled: wait until its trust window has surely run out too.
            remaining = EDGE_TRUST_WINDOW_SECONDS + 0.5 - (time.monotonic() - started)
            if remaining > 0:
                await asyncio.sleep(remaining)
            _log.warning("edge.invalidation.unacknowledged", replicas=sorted(missing), reason=reason)


class BusAccessRevoker:
    """Revoked OAuth access tokens: every edge replica adds the jti to its deny list until expiry."""

    def __init__(self, invalidator: BusEdgeInvalidator) -> None:
        self._invalidator = invalidator

    async def revoke_access(self, revoked: list[RevokedAccess]) -> None:
        for access in revoked:
            await self._invalidator.invalidate(
                access.integration_id,
                "oauth.access_token.revoked",
                revoked_jti=access.jti,
                revoked_jti_expires_at=access.expires_at.timestamp(),
            )


class BusTokenEvents:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def rotated(self, integration_id: str, old_version: int) -> None:
        await self._publish(TOKEN_ROTATED, integration_id, old_version)

    async def revoked(self, integration_id: str, old_version: int) -> None:
        await self._publish(TOKEN_REVOKED, integration_id, old_version)

    async def _publish(self, event: Event[TokenRevoked], integration_id: str, version: int) -> None:
        try:
            await self._bus.publish_event(
                event,
                TokenRevoked(integration_id=integration_id, version=version),
                msg_id=f"{event.subject}:{integration_id}:{version}",
            )
        except Exception as exc:  # the revocation itself already happened; the event is informative
            _log.warning("event.publish.failed", subject=event.subject, error=type(exc).__name__)


def listen_for_heartbeats(consumers: NatsRouter, presence: EdgePresence) -> None:
    """Every auth replica keeps its own view of live edges (a plain subscription, no queue group)."""

    async def readable_heartbeat(message: StreamMessage[Any]) -> EdgeHeartbeat | None:
        try:
            return _heartbeat_decoder.decode(message.body)
        except msgspec.DecodeError:
            return None  # not an edge's heartbeat: ignored

    @consumers.subscriber(
        EDGE_HEARTBEAT_SUBJECT,
        decoder=readable_heartbeat,
        title=EDGE_HEARTBEAT_SUBJECT,
        description="edge replicas' presence, for the acknowledgements a rotation awaits",
    )
    async def saw_edge(beat: EdgeHeartbeat | None) -> None:
        if beat is not None:
            presence.saw(beat.instance_id)
