"""Announces session changes on JetStream (stream ``EVENTS_SESSIONS``)."""

from __future__ import annotations

import structlog

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.sessions import SessionEvent, SessionInfo
from skillrelay_common.subjects import (
    SESSION_CLOSED,
    SESSION_EXPIRED,
    SESSION_OPENED,
    SESSION_UPDATED,
    Event,
)
from skillrelay_sessions.service import EventKind

_log = structlog.get_logger("skillrelay.sessions.events")

_EVENTS: dict[EventKind, Event[SessionEvent]] = {
    "opened": SESSION_OPENED,
    "closed": SESSION_CLOSED,
    "expired": SESSION_EXPIRED,
    "updated": SESSION_UPDATED,
}


class JetStreamSessionEvents:
    """The change is already committed when this runs; a failed publish is logged, not raised (the
    edge replicas' caches are bounded in time, so a lost event delays nothing past their cache TTL)."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def publish(self, kind: EventKind, session: SessionInfo, reason: str = "") -> None:
        payload = SessionEvent(
            session_id=session.session_id,
            integration_id=session.integration_id,
            principal=session.principal,
            reason=reason,
        )
        try:
            await self._bus.publish_event(_EVENTS[kind], payload)
        except Exception as exc:
            _log.warning(
                "session.event.publish_failed",
                kind=kind,
                integration_id=session.integration_id,
                error=type(exc).__name__,
            )
        else:
            _log.info(
                f"session.{kind}",
                integration_id=session.integration_id,
                principal=session.principal,
                reason=reason or None,
            )
