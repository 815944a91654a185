"""An integration's own idle timeout, ending idle sessions, and live counts, against real PostgreSQL and
NATS with a controllable clock."""

from __future__ import annotations

import uuid

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.base import Invalid, NotFound
from skillrelay_common.schemas.sessions import (
    CloseIdleSessions,
    CountSessions,
    CreateSession,
    GetSession,
    SessionCounts,
    SessionInfo,
    SessionsClosed,
    TouchSessions,
)
from skillrelay_common.subjects import (
    SESSIONS_CLOSE_IDLE,
    SESSIONS_COUNT,
    SESSIONS_CREATE,
    SESSIONS_GET,
    SESSIONS_TOUCH,
)
from skillrelay_devstack.sessions import ManualClock
from skillrelay_devstack.testing import SESSIONS_TTL as TTL
from skillrelay_sessions.app import SessionsRuntime


def integration() -> str:
    return f"mcpserver_{uuid.uuid4().hex[:12]}"


async def open_session(bus: Bus, integration_id: str, ttl_seconds: float | None = None) -> SessionInfo:
    reply = await bus.request(
        SESSIONS_CREATE,
        CreateSession(integration_id=integration_id, principal="static:v1", ttl_seconds=ttl_seconds),
    )
    assert isinstance(reply, SessionInfo), reply
    return reply


async def touched(bus: Bus, session_id: str, seen_at: float) -> SessionInfo:
    """Touch (fire-and-forget on the edge, a request here) and read the session back."""
    await bus.request(SESSIONS_TOUCH, TouchSessions(session_ids=[session_id], seen_at=seen_at))
    found = await bus.request(SESSIONS_GET, GetSession(session_id=session_id))
    assert isinstance(found, SessionInfo), found
    return found


async def test_each_session_slides_by_its_integrations_idle_timeout(
    sessions: SessionsRuntime, bus: Bus, clock: ManualClock
) -> None:
    integration_id = integration()
    short = await open_session(bus, integration_id, ttl_seconds=300)
    default = await open_session(bus, integration_id)
    assert short.expires_at == clock.now + 300 and default.expires_at == clock.now + TTL
    clock.advance(100)
    assert (await touched(bus, short.session_id, clock.now)).expires_at == clock.now + 300
    assert (await touched(bus, default.session_id, clock.now)).expires_at == clock.now + TTL
    clock.advance(301)  # unused for longer than its timeout: gone, while the default one lives on
    gone = await bus.request(SESSIONS_GET, GetSession(session_id=short.session_id))
    assert isinstance(gone, NotFound)
    assert isinstance(await bus.request(SESSIONS_GET, GetSession(session_id=default.session_id)), SessionInfo)
    for bad in (1.0, 31 * 86400.0):
        refused = await bus.request(
            SESSIONS_CREATE,
            CreateSession(integration_id=integration_id, principal="static:v1", ttl_seconds=bad),
        )
        assert isinstance(refused, Invalid)


async def test_sessions_idle_for_a_while_are_ended_and_counted(
    sessions: SessionsRuntime, bus: Bus, clock: ManualClock
) -> None:
    mine, other = integration(), integration()
    idle = [await open_session(bus, mine) for _ in range(2)]
    busy = await open_session(bus, mine)
    elsewhere = await open_session(bus, other)
    counted = await bus.request(
        SESSIONS_COUNT, CountSessions(integration_ids=[mine, other, "mcpserver_none"])
    )
    assert isinstance(counted, SessionCounts)
    assert counted.counts == {mine: 3, other: 1, "mcpserver_none": 0}

    clock.advance(600)
    await touched(bus, busy.session_id, clock.now)
    closed = await bus.request(SESSIONS_CLOSE_IDLE, CloseIdleSessions(integration_id=mine, idle_seconds=300))
    assert closed == SessionsClosed(count=2)
    for session in idle:
        assert not isinstance(
            await bus.request(SESSIONS_GET, GetSession(session_id=session.session_id)), SessionInfo
        )
    for session in (busy, elsewhere):
        assert isinstance(
            await bus.request(SESSIONS_GET, GetSession(session_id=session.session_id)), SessionInfo
        )
    after = await bus.request(SESSIONS_COUNT, CountSessions(integration_ids=[mine]))
    assert after == SessionCounts(counts={mine: 1})

    refused = await bus.request(SESSIONS_CLOSE_IDLE, CloseIdleSessions(integration_id=mine, idle_seconds=5))
    assert isinstance(refused, Invalid)
    too_many = await bus.request(
        SESSIONS_COUNT, CountSessions(integration_ids=[f"x{i}" for i in range(1001)])
    )
    assert isinstance(too_many, Invalid)
