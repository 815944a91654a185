"""NATS entry points of the sessions service (FastStream subscribers, ``skillrelay_common.broker``):
decode, call the service, encode. Nothing else."""

from __future__ import annotations

from typing import Any

from skillrelay_common.broker import Answers
from skillrelay_common.schemas.base import Invalid, NotFound, Ok
from skillrelay_common.schemas.sessions import (
    CloseIdleSessions,
    CloseSession,
    CloseSessions,
    CountSessions,
    CreateSession,
    GetSession,
    ListSessions,
    SessionCounts,
    SessionInfo,
    SessionList,
    SessionsClosed,
    TouchSessions,
    UpdateSessionState,
)
from skillrelay_common.subjects import (
    SESSIONS_CLOSE,
    SESSIONS_CLOSE_ALL,
    SESSIONS_CLOSE_IDLE,
    SESSIONS_COUNT,
    SESSIONS_CREATE,
    SESSIONS_GET,
    SESSIONS_LIST,
    SESSIONS_PING,
    SESSIONS_TOUCH,
    SESSIONS_UPDATE_STATE,
    Endpoint,
)
from skillrelay_sessions.service import SessionService

# Every endpoint this service answers (the contract test checks each subject has exactly one owner).
SERVED_ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (
    SESSIONS_PING,
    SESSIONS_CREATE,
    SESSIONS_GET,
    SESSIONS_TOUCH,
    SESSIONS_UPDATE_STATE,
    SESSIONS_CLOSE,
    SESSIONS_CLOSE_ALL,
    SESSIONS_LIST,
    SESSIONS_CLOSE_IDLE,
    SESSIONS_COUNT,
)


def register_handlers(answers: Answers, service: SessionService) -> None:
    answers.serve_ping(SESSIONS_PING)

    async def create(request: CreateSession) -> SessionInfo | Invalid:
        return await service.create(
            request.integration_id,
            request.principal,
            request.protocol_version,
            request.state,
            request.max_sessions,
            ttl_seconds=request.ttl_seconds,
        )

    async def get(request: GetSession) -> SessionInfo | NotFound:
        return await service.get(request.session_id)

    async def touch(request: TouchSessions) -> Ok:
        return await service.touch(request.session_ids, request.seen_at)

    async def update_state(request: UpdateSessionState) -> SessionInfo | NotFound | Invalid:
        return await service.update_state(
            request.session_id,
            request.state,
            request.protocol_version,
            request.add_items,
            request.remove_items,
        )

    async def close(request: CloseSession) -> Ok | NotFound:
        return await service.close(request.session_id, request.reason, request.integration_id)

    async def close_all(request: CloseSessions) -> SessionsClosed:
        return await service.close_all(request.integration_id, request.principal, request.reason)

    async def list_sessions(request: ListSessions) -> SessionList:
        return await service.list(
            request.integration_id, request.take, request.order == "desc", request.after
        )

    answers.serve(SESSIONS_CREATE, create)
    answers.serve(SESSIONS_GET, get)
    answers.serve(SESSIONS_TOUCH, touch)
    answers.serve(SESSIONS_UPDATE_STATE, update_state)
    answers.serve(SESSIONS_CLOSE, close)
    answers.serve(SESSIONS_CLOSE_ALL, close_all)
    answers.serve(SESSIONS_LIST, list_sessions)

    async def close_idle(request: CloseIdleSessions) -> SessionsClosed | Invalid:
        return await service.close_idle(request.integration_id, request.idle_seconds, request.reason)

    async def count(request: CountSessions) -> SessionCounts | Invalid:
        return await service.count(request.integration_ids)

    answers.serve(SESSIONS_CLOSE_IDLE, close_idle)
    answers.serve(SESSIONS_COUNT, count)
