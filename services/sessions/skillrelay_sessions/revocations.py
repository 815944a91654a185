"""Ends sessions when what covered them goes away: a rotated or revoked static token, a deleted
integration, or a changed OAuth connection.

The events are read through durable JetStream pull consumers shared by every sessions replica (each
event is handled by one replica, acknowledged only after the sessions were closed). If every sessions
replica is down when the event is published, it waits in the stream and is handled on the next start;
while no replica runs, no session can be created or resolved either, so nothing acts on a session
that should have ended. Handling is idempotent (closing what is already closed closes nothing), so a
redelivery after a crash between closing and acknowledging is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from skillrelay_common.messaging import Bus
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


class RevocationListener:
    def __init__(
        self,
        bus: Bus,
        service: SessionService,
        *,
        durable_prefix: str = "sessions",
        fetch_timeout: float = 1.0,
    ) -> None:
        self._bus = bus
        self._service = service
        self._fetch_timeout = fetch_timeout
        self._feeds = (
            _Feed(AUTH_EVENTS.name, "events.auth.token.*", f"{durable_prefix}-token-revocations"),
            _Feed(
                REGISTRY_EVENTS.name, "events.registry.integration.*", f"{durable_prefix}-integration-changes"
            ),
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriptions: list[object] = []

    async def start(self) -> None:
        for feed in self._feeds:
            # DeliverPolicy.NEW applies only when the durable is first created (first start ever,
            # no sessions yet); afterwards the consumer resumes from its acknowledged position.
            config = ConsumerConfig(
                durable_name=feed.durable,
                deliver_policy=DeliverPolicy.NEW,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=30,
                # No delivery limit: a revocation must not be dropped because the database was down.
            )
            subscription = await self._bus.js.pull_subscribe(
                feed.filter_subject, durable=feed.durable, stream=feed.stream, config=config
            )
            self._subscriptions.append(subscription)
            self._tasks.append(
                asyncio.create_task(self._consume(subscription.fetch), name=f"sessions-{feed.durable}")
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()  # type: ignore[attr-defined]
        self._subscriptions.clear()

    async def _consume(self, fetch: Callable[..., Awaitable[list[Msg]]]) -> None:
        while True:
            try:
                messages = await fetch(batch=32, timeout=self._fetch_timeout)
            except (nats.errors.TimeoutError, TimeoutError):
                continue  # nothing new within the fetch window
            except (nats.errors.ConnectionClosedError, nats.errors.ConnectionDrainingError):
                return
            except Exception as exc:
                _log.warning("sessions.revocations.fetch_failed", error=type(exc).__name__)
                await asyncio.sleep(self._fetch_timeout)
                continue
            for message in messages:
                await self._handle(message)

    async def _handle(self, message: Msg) -> None:
        try:
            target = revocation_reason(message.subject, message.data)
        except msgspec.DecodeError:
            _log.warning("sessions.revocations.unreadable_event", subject=message.subject)
            await message.ack()
            return
        if target is None:
            await message.ack()
            return
        integration_id, reason = target
        try:
            closed = await self._service.close_all(integration_id, None, reason)
        except Exception:
            _log.exception("sessions.revocations.close_failed", integration_id=integration_id)
            await message.nak(delay=2.0)
            return
        await message.ack()
        _log.info("sessions.revoked", integration_id=integration_id, reason=reason, count=closed.count)
