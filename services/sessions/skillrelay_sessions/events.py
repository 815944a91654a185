"""Announces session changes on JetStream (stream ``EVENTS_SESSIONS``) and in the audit trail."""

from __future__ import annotations

import structlog

from skillrelay_common.audit import AuditRecorder
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

_AUDITED: frozenset[EventKind] = frozenset({"opened", "closed", "expired"})


class JetStreamSessionEvents:
    """The change is already committed when this runs; a failed publish is logged, not raised (the
    edge replicas' caches are bounded in time, so a lost event delays nothing past their cache TTL)."""

    def __init__(self, bus: Bus, audit: AuditRecorder | None = None) -> None:
        self._bus = bus
        self._audit = audit

    async def publish(self, kind: EventKind, session: SessionInfo, reason: str = "") -> None:
        payload = SessionEvent(
            session_id=session.session_id,
            integration_id=session.integration_id,
            principal=session.principal,
            reason=reason,
        )
        if self._audit is not None and kind in _AUDITED:
            # A session id is not a credential (a request must carry one too), so it may be audited.
            self._audit.record(
                f"session.{kind}",
                session.integration_id,
                outcome=reason or "ok",
                principal=session.principal,
                data={"sessionId": session.session_id},
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
