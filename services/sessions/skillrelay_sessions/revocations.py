"""Ends sessions when what covered them goes away: a rotated or revoked static token, a deleted
integration, or a changed OAuth connection.

The events are read through durable JetStream pull consumers (FastStream subscribers) shared by every
sessions replica (each
event is handled by one replica, acknowledged only after the sessions were closed). If every sessions
replica is down when the event is published, it waits in the stream and is handled on the next start;
while no replica runs, no session can be created or resolved either, so nothing acts on a session
that should have ended. Handling is idempotent (closing what is already closed closes nothing), so a
redelivery after a crash between closing and acknowledging is harmless.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from faststream import AckPolicy
from faststream.message import StreamMessage
from faststream.nats import JStream, NatsMessage, NatsRouter, PullSub
from nats.js.api import ConsumerConfig, DeliverPolicy

from skillrelay_common.schemas.auth import TokenRevoked
from skillrelay_common.schemas.registry import IntegrationChanged
from skillrelay_common.subjects import (
    AUTH_EVENTS,
    INTEGRATION_DELETED,
    INTEGRATION_UPDATED,
    REGISTRY_EVENTS,
    TOKEN_REVOKED,
    TOKEN_ROTATED,
)
from skillrelay_sessions.service import SessionService

_log = structlog.get_logger("skillrelay.sessions.revocations")
_token_event = msgspec.json.Decoder(TokenRevoked)
_integration_event = msgspec.json.Decoder(IntegrationChanged)

OAUTH_CONNECTION_FIELD = "oAuthConnectionId"


def revocation_reason(subject: str, data: bytes) -> tuple[str, str] | None:
    """(integration id, reason) when the event ends every session of an integration, else None.

    A rotated or revoked static token ends all of the integration's sessions, OAuth ones included:
    the static token gates every request of the integration, so it covered them all."""
    if subject in (TOKEN_ROTATED.subject, TOKEN_REVOKED.subject):
        token = _token_event.decode(data)
        return token.integration_id, "token_rotated" if subject == TOKEN_ROTATED.subject else "token_revoked"
    if subject == INTEGRATION_DELETED.subject:
        return _integration_event.decode(data).integration_id, "integration_deleted"
    if subject == INTEGRATION_UPDATED.subject:
        change = _integration_event.decode(data)
        if OAUTH_CONNECTION_FIELD in change.fields:
            return change.integration_id, "oauth_connection_changed"
    return None


@dataclass(frozen=True)
class _Feed:
    stream: str
    filter_subject: str
    durable: str


def register_revocation_consumers(
    consumers: NatsRouter,
    service: SessionService,
    *,
    durable_prefix: str = "sessions",
    fetch_timeout: float = 1.0,
) -> None:
    """Two durable pull consumers (FastStream subscribers): static-token events and integration
    changes. Acknowledged by hand: only once the sessions are closed."""
    feeds = (
        _Feed(AUTH_EVENTS.name, "events.auth.token.*", f"{durable_prefix}-token-revocations"),
        _Feed(REGISTRY_EVENTS.name, "events.registry.integration.*", f"{durable_prefix}-integration-changes"),
    )
    for feed in feeds:
        subscriber = consumers.subscriber(
            feed.filter_subject,
            stream=JStream(feed.stream, declare=False),
            durable=feed.durable,
            # DeliverPolicy.NEW applies only when the durable is first created (first start ever,
            # no sessions yet); afterwards the consumer resumes from its acknowledged position.
            deliver_policy=DeliverPolicy.NEW,
            # No delivery limit: a revocation must not be dropped because the database was down.
            config=ConsumerConfig(ack_wait=30),
            # One message per fetch: nats-py's batch fetch, once a first message arrived on an idle
            # consumer, waits out its whole timeout for the rest of the batch (a revocation then took
            # up to that long), and when its deadline runs out it raises a plain TimeoutError that
            # FastStream does not expect (an error logged and the consumer restarted, seen in
            # `make run`). Revocations are rare; a round trip each is nothing.
            pull_sub=PullSub(batch_size=1, timeout=fetch_timeout),
            ack_policy=AckPolicy.MANUAL,
            decoder=_raw_body,
            title=f"{feed.durable} ({feed.filter_subject})",
            description="ends the sessions a rotated or revoked token, a deleted integration or a "
            "changed OAuth connection covered",
        )
        subscriber(_revocation_handler(service))


async def _raw_body(message: StreamMessage[Any]) -> bytes:
    """The event's bytes as they came: ``revocation_reason`` decodes them by subject."""
    return bytes(message.body)


def _revocation_handler(service: SessionService) -> Callable[..., Awaitable[None]]:
    async def end_covered_sessions(body: bytes, message: NatsMessage) -> None:
        subject = message.raw_message.subject
        try:
            target = revocation_reason(subject, body)
        except msgspec.DecodeError:
            _log.warning("sessions.revocations.unreadable_event", subject=subject)
            await message.ack()
            return
        if target is None:
            await message.ack()
            return
        integration_id, reason = target
        try:
            closed = await service.close_all(integration_id, None, reason)
        except Exception:
            _log.exception("sessions.revocations.close_failed", integration_id=integration_id)
            await message.nack(delay=2.0)
            return
        await message.ack()
        _log.info("sessions.revoked", integration_id=integration_id, reason=reason, count=closed.count)

    return end_covered_sessions
