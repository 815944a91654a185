"""The owner's clean-up of sessions: end those idle for a while, and count the live ones per server."""

from __future__ import annotations

from collections.abc import Sequence

from skillrelay_common.schemas.base import Invalid
from skillrelay_common.schemas.sessions import CloseIdleSessions, CountSessions, SessionCounts, SessionsClosed
from skillrelay_common.subjects import SESSIONS_CLOSE_IDLE, SESSIONS_COUNT
from skillrelay_registry import schemas
from skillrelay_registry.errors import InvalidInput, ServiceUnavailable
from skillrelay_registry.models import Integration
from skillrelay_registry.usecases.base import UseCaseBase, owned, reply_reason


class SessionAdminUseCases(UseCaseBase):
    async def end_idle_sessions(
        self, owner_id: str, integration_id: str, data: schemas.SessionEndIdle
    ) -> schemas.SessionsEnded:
        """End the integration's sessions not used for ``idleMinutes`` or more (most clients never send
        DELETE, so their sessions would otherwise last the whole idle timeout)."""
        async with self._unit() as repo:
            await owned(repo, Integration, owner_id, integration_id, "integration")  # 404 unless the owner's
        reply = await self._bus.request(
            SESSIONS_CLOSE_IDLE,
            CloseIdleSessions(integration_id=integration_id, idle_seconds=data.idle_minutes * 60.0),
        )
        if isinstance(reply, Invalid):
            raise InvalidInput(reply.message)
        if not isinstance(reply, SessionsClosed):
            raise ServiceUnavailable(f"the sessions service did not answer: {reply_reason(reply)}")
        return schemas.SessionsEnded(count=reply.count)

    async def count_live_sessions(self, integration_ids: Sequence[str]) -> dict[str, int] | None:
        """Live sessions per integration (ids the caller already knows to be the owner's); None when the
        sessions service does not answer (the list page then shows no count)."""
        if not integration_ids:
            return {}
        reply = await self._bus.request(SESSIONS_COUNT, CountSessions(integration_ids=list(integration_ids)))
        return reply.counts if isinstance(reply, SessionCounts) else None
