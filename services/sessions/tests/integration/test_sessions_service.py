"""The sessions service against real PostgreSQL and NATS (JetStream), with a controllable clock."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest
from nats.aio.msg import Msg

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.audit import AuditRecord
from skillrelay_common.schemas.auth import TokenRevoked
from skillrelay_common.schemas.base import Invalid, NotFound, Ok, Unavailable
from skillrelay_common.schemas.registry import IntegrationChanged
from skillrelay_common.schemas.sessions import (
    CloseSession,
    CloseSessions,
    CreateSession,
    GetSession,
    ListSessions,
    SessionEvent,
    SessionInfo,
    SessionList,
    SessionsClosed,
    TouchSessions,
    UpdateSessionState,
)
from skillrelay_common.subjects import (
    INTEGRATION_DELETED,
    INTEGRATION_UPDATED,
    SESSIONS_CLOSE,
    SESSIONS_CLOSE_ALL,
    SESSIONS_CREATE,
    SESSIONS_GET,
    SESSIONS_LIST,
    SESSIONS_TOUCH,
    SESSIONS_UPDATE_STATE,
    TOKEN_ROTATED,
)
from skillrelay_devstack.sessions import ManualClock, running_sessions
from skillrelay_devstack.testing import SESSIONS_TTL as TTL
from skillrelay_sessions.app import SessionsRuntime


class EventLog:
    """Every session event seen on the bus, in order, with a way to wait for one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, SessionEvent]] = []
        self._changed = asyncio.Condition()

    async def on_message(self, msg: Msg) -> None:
        kind = msg.subject.rsplit(".", 1)[-1]
        async with self._changed:
            self.events.append((kind, msgspec.json.decode(msg.data, type=SessionEvent)))
            self._changed.notify_all()

    async def wait_for(self, kind: str, session_id: str, timeout: float = 5.0) -> SessionEvent:
        def find() -> SessionEvent | None:
            for seen_kind, event in self.events:
                if seen_kind == kind and event.session_id == session_id:
                    return event
            return None

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: find() is not None), timeout)
        found = find()
        assert found is not None
        return found

    def of(self, kind: str) -> list[SessionEvent]:
        return [event for seen_kind, event in self.events if seen_kind == kind]


@pytest.fixture
async def events(bus: Bus) -> EventLog:
    log = EventLog()
    await bus.nc.subscribe("events.sessions.session.*", cb=log.on_message)
    await bus.nc.flush()
    return log


def integration() -> str:
    return f"mcpserver_{uuid.uuid4().hex[:12]}"


async def open_session(bus: Bus, integration_id: str, principal: str = "static:v1") -> SessionInfo:
    reply = await bus.request(
        SESSIONS_CREATE, CreateSession(integration_id=integration_id, principal=principal)
    )
    assert isinstance(reply, SessionInfo), reply
    return reply


async def test_lifecycle_create_get_update_list_close(
    sessions: SessionsRuntime, bus: Bus, events: EventLog, clock: ManualClock
) -> None:
    integration_id = integration()
    created = await bus.request(
        SESSIONS_CREATE,
        CreateSession(
            integration_id=integration_id,
            principal="oauth:alice",
            protocol_version="2025-06-18",
            state={"capabilities": {"sampling": {}}},
        ),
    )
    assert isinstance(created, SessionInfo)
    assert len(created.session_id) >= 32 and created.session_id.isascii() and created.session_id.isprintable()
    assert created.expires_at == clock.now + TTL
    await events.wait_for("opened", created.session_id)

    fetched = await bus.request(SESSIONS_GET, GetSession(session_id=created.session_id))
    assert fetched == created

    updated = await bus.request(
        SESSIONS_UPDATE_STATE,
        UpdateSessionState(session_id=created.session_id, state={"logLevel": "debug"}),
    )
    assert isinstance(updated, SessionInfo)
    assert updated.state == {"capabilities": {"sampling": {}}, "logLevel": "debug"}
    assert updated.protocol_version == "2025-06-18"
    await events.wait_for("updated", created.session_id)

    listed = await bus.request(SESSIONS_LIST, ListSessions(integration_id=integration_id))
    assert isinstance(listed, SessionList)
    assert [s.session_id for s in listed.sessions] == [created.session_id]

    assert await bus.request(SESSIONS_CLOSE, CloseSession(session_id=created.session_id)) == Ok()
    closed = await events.wait_for("closed", created.session_id)
    assert closed.integration_id == integration_id and closed.principal == "oauth:alice"
    assert await bus.request(SESSIONS_GET, GetSession(session_id=created.session_id)) == NotFound(
        what="session"
    )
    assert await bus.request(SESSIONS_CLOSE, CloseSession(session_id=created.session_id)) == NotFound(
        what="session"
    )


async def test_create_rejects_a_malformed_binding(sessions: SessionsRuntime, bus: Bus) -> None:
    for principal in ("", "anonymous", "static:vX", "oauth:"):
        reply = await bus.request(
            SESSIONS_CREATE, CreateSession(integration_id="mcpserver_x", principal=principal)
        )
        assert isinstance(reply, Invalid), principal
    too_big = {"blob": "x" * 70_000}
    session = await open_session(bus, integration())
    reply = await bus.request(
        SESSIONS_UPDATE_STATE, UpdateSessionState(session_id=session.session_id, state=too_big)
    )
    assert isinstance(reply, Invalid)


async def test_expiry_slides_with_every_touch(
    sessions: SessionsRuntime, bus: Bus, clock: ManualClock
) -> None:
    session = await open_session(bus, integration())
    for _ in range(3):  # three TTLs in total pass, the session lives on because it is used
        clock.advance(TTL - 1)
        assert (
            await bus.request(
                SESSIONS_TOUCH, TouchSessions(session_ids=[session.session_id], seen_at=clock.now)
            )
            == Ok()
        )
    alive = await bus.request(SESSIONS_GET, GetSession(session_id=session.session_id))
    assert isinstance(alive, SessionInfo)
    assert alive.last_seen_at == clock.now and alive.expires_at == clock.now + TTL

    clock.advance(TTL + 1)  # unused for longer than the TTL
    assert isinstance(await bus.request(SESSIONS_GET, GetSession(session_id=session.session_id)), NotFound)


async def test_touch_never_moves_back_nor_into_the_future_nor_revives(
    sessions: SessionsRuntime, bus: Bus, clock: ManualClock
) -> None:
    session = await open_session(bus, integration())
    clock.advance(10)
    await bus.request(SESSIONS_TOUCH, TouchSessions(session_ids=[session.session_id], seen_at=clock.now))
    await bus.request(SESSIONS_TOUCH, TouchSessions(session_ids=[session.session_id], seen_at=clock.now - 5))
    await bus.request(
        SESSIONS_TOUCH, TouchSessions(session_ids=[session.session_id], seen_at=clock.now + 10_000)
    )
    info = await bus.request(SESSIONS_GET, GetSession(session_id=session.session_id))
    assert isinstance(info, SessionInfo) and info.last_seen_at == clock.now

    await bus.request(SESSIONS_CLOSE, CloseSession(session_id=session.session_id))
    await bus.request(SESSIONS_TOUCH, TouchSessions(session_ids=[session.session_id], seen_at=clock.now))
    assert isinstance(await bus.request(SESSIONS_GET, GetSession(session_id=session.session_id)), NotFound)


async def test_one_touch_batch_is_one_write_whatever_its_size(
    sessions: SessionsRuntime, bus: Bus, clock: ManualClock
) -> None:
    integration_id = integration()
    opened = [await open_session(bus, integration_id) for _ in range(50)]
    assert sessions.store is not None
    before = sessions.store.counters.touch_statements
    clock.advance(5)
    batch = TouchSessions(session_ids=[s.session_id for s in opened] + ["unknown-id"], seen_at=clock.now)
    assert await bus.request(SESSIONS_TOUCH, batch) == Ok()
    assert sessions.store.counters.touch_statements - before == 1
    listed = await bus.request(SESSIONS_LIST, ListSessions(integration_id=integration_id))
    assert isinstance(listed, SessionList)
    assert {s.last_seen_at for s in listed.sessions} == {clock.now}


async def test_sessions_are_isolated_by_integration_and_principal(
    sessions: SessionsRuntime, bus: Bus
) -> None:
    first, second = integration(), integration()
    mine = await open_session(bus, first, "static:v1")
    alices = await open_session(bus, first, "oauth:alice")
    theirs = await open_session(bus, second, "static:v1")

    listed = await bus.request(SESSIONS_LIST, ListSessions(integration_id=first))
    assert isinstance(listed, SessionList)
    assert {s.session_id for s in listed.sessions} == {mine.session_id, alices.session_id}

    # Closing through another integration's scope does nothing.
    scoped = CloseSession(session_id=theirs.session_id, integration_id=first)
    assert isinstance(await bus.request(SESSIONS_CLOSE, scoped), NotFound)

    only_alice = CloseSessions(integration_id=first, principal="oauth:alice")
    assert await bus.request(SESSIONS_CLOSE_ALL, only_alice) == SessionsClosed(count=1)
    assert isinstance(await bus.request(SESSIONS_GET, GetSession(session_id=mine.session_id)), SessionInfo)
    assert isinstance(await bus.request(SESSIONS_GET, GetSession(session_id=theirs.session_id)), SessionInfo)
    assert isinstance(await bus.request(SESSIONS_GET, GetSession(session_id=alices.session_id)), NotFound)


async def test_sweeper_waits_out_the_grace_then_expires_and_announces(
    sessions: SessionsRuntime, bus: Bus, events: EventLog, clock: ManualClock
) -> None:
    late = await open_session(bus, integration())
    idle = await open_session(bus, integration())
    used_at = clock.now + TTL - 1  # both alive here; only "late" is used
    clock.advance(TTL + 30)  # both past expiry, still within the 60 s sweep grace
    assert sessions.sweeper is not None and sessions.service is not None
    assert await sessions.service.sweep_expired() == 0

    # The keep-alive batch for the use at ``used_at`` arrives late: the session was not lost.
    await bus.request(SESSIONS_TOUCH, TouchSessions(session_ids=[late.session_id], seen_at=used_at))
    assert isinstance(await bus.request(SESSIONS_GET, GetSession(session_id=late.session_id)), SessionInfo)

    clock.advance(31)  # "idle" is now expired for longer than the grace
    sessions.sweeper.wake()
    expired = await events.wait_for("expired", idle.session_id)
    assert expired.reason == "expired"
    assert isinstance(await bus.request(SESSIONS_GET, GetSession(session_id=late.session_id)), SessionInfo)
    assert not [e for e in events.of("expired") if e.session_id == late.session_id]


async def test_two_sweepers_announce_each_expiry_once(
    nats_url: str,
    database_url: str,
    sessions: SessionsRuntime,
    bus: Bus,
    events: EventLog,
    clock: ManualClock,
) -> None:
    integration_id = integration()
    opened = {(await open_session(bus, integration_id)).session_id for _ in range(40)}
    async with running_sessions(nats_url, database_url, clock, ttl_seconds=TTL) as other:
        clock.advance(TTL + 61)
        assert sessions.service is not None and other.service is not None
        counts = await asyncio.gather(sessions.service.sweep_expired(), other.service.sweep_expired())
        assert sum(counts) == len(opened)
        for session_id in opened:
            await events.wait_for("expired", session_id)
    expired_ids = [e.session_id for e in events.of("expired") if e.integration_id == integration_id]
    assert sorted(expired_ids) == sorted(opened)


async def test_sessions_survive_a_restart_of_the_service(
    nats_url: str, database_url: str, bus: Bus, clock: ManualClock
) -> None:
    async with running_sessions(nats_url, database_url, clock, ttl_seconds=TTL):
        session = await open_session(bus, integration(), "oauth:bob")
        await bus.request(
            SESSIONS_UPDATE_STATE, UpdateSessionState(session_id=session.session_id, state={"a": 1})
        )
    down = await bus.request(SESSIONS_GET, GetSession(session_id=session.session_id), timeout=0.5)
    assert isinstance(down, Unavailable)
    async with running_sessions(nats_url, database_url, clock, ttl_seconds=TTL):
        again = await bus.request(SESSIONS_GET, GetSession(session_id=session.session_id))
        assert isinstance(again, SessionInfo)
        assert again.principal == "oauth:bob" and again.state == {"a": 1}


async def test_revocation_events_end_the_sessions_they_covered(
    sessions: SessionsRuntime, bus: Bus, events: EventLog
) -> None:
    rotated, deleted, reconnected, renamed = (integration() for _ in range(4))
    s_rotated = [
        await open_session(bus, rotated, "static:v1"),
        await open_session(bus, rotated, "oauth:carol"),
    ]
    s_deleted = await open_session(bus, deleted)
    s_reconnected = await open_session(bus, reconnected, "oauth:dave")
    s_renamed = await open_session(bus, renamed)

    await bus.publish_event(TOKEN_ROTATED, TokenRevoked(integration_id=rotated, version=1))
    await bus.publish_event(
        INTEGRATION_DELETED, IntegrationChanged(integration_id=deleted, owner_id="user_x", change="deleted")
    )
    await bus.publish_event(
        INTEGRATION_UPDATED,
        IntegrationChanged(integration_id=renamed, owner_id="user_x", change="updated", fields=["name"]),
    )
    await bus.publish_event(
        INTEGRATION_UPDATED,
        IntegrationChanged(
            integration_id=reconnected, owner_id="user_x", change="updated", fields=["oAuthConnectionId"]
        ),
    )

    for session in s_rotated:
        assert (await events.wait_for("closed", session.session_id)).reason == "token_rotated"
    assert (await events.wait_for("closed", s_deleted.session_id)).reason == "integration_deleted"
    assert (await events.wait_for("closed", s_reconnected.session_id)).reason == "oauth_connection_changed"
    # Events are handled in stream order: the rename came before the OAuth change, so it was handled.
    assert isinstance(
        await bus.request(SESSIONS_GET, GetSession(session_id=s_renamed.session_id)), SessionInfo
    )


async def test_a_revocation_published_while_the_service_is_down_is_handled_on_start(
    nats_url: str, database_url: str, bus: Bus, events: EventLog, clock: ManualClock
) -> None:
    durable = f"sessions-restart-{uuid.uuid4().hex[:8]}"
    integration_id = integration()
    async with running_sessions(nats_url, database_url, clock, durable_prefix=durable):
        session = await open_session(bus, integration_id)
    await bus.publish_event(
        INTEGRATION_DELETED,
        IntegrationChanged(integration_id=integration_id, owner_id="user_x", change="deleted"),
    )
    async with running_sessions(nats_url, database_url, clock, durable_prefix=durable):
        closed = await events.wait_for("closed", session.session_id)
        assert closed.reason == "integration_deleted"
        assert isinstance(
            await bus.request(SESSIONS_GET, GetSession(session_id=session.session_id)), NotFound
        )


async def test_session_changes_are_audited(sessions: SessionsRuntime, bus: Bus) -> None:
    integration_id = integration()
    records: asyncio.Queue[AuditRecord] = asyncio.Queue()

    async def collect(msg: Msg) -> None:
        await records.put(msgspec.json.decode(msg.data, type=AuditRecord))

    await bus.nc.subscribe(f"audit.{integration_id}.>", cb=collect)
    await bus.nc.flush()
    session = await open_session(bus, integration_id, "oauth:alice")
    await bus.request(SESSIONS_CLOSE, CloseSession(session_id=session.session_id))
    opened = await asyncio.wait_for(records.get(), 5)
    closed = await asyncio.wait_for(records.get(), 5)
    assert (opened.data.kind, opened.data.outcome, opened.data.principal) == (
        "session.opened",
        "ok",
        "oauth:alice",
    )
    assert (closed.data.kind, closed.data.outcome) == ("session.closed", "deleted")
    assert opened.data.details == {"sessionId": session.session_id}


async def test_listing_many_large_sessions_answers_in_pages_that_fit_nats(
    sessions: SessionsRuntime, bus: Bus
) -> None:
    """Regression: an integration with many sessions (each with a large client state) made the list one
    reply larger than NATS's payload limit, so it answered nothing at all (503 for good)."""
    integration_id = integration()
    big_state = {"capabilities": {"experimental": {"blob": "x" * 60_000}}}
    opened: list[str] = []
    for _ in range(25):  # 25 x 60 KB: a single unpaged reply would be 1.5 MB
        reply = await bus.request(
            SESSIONS_CREATE,
            CreateSession(integration_id=integration_id, principal="static:v1", state=big_state),
        )
        assert isinstance(reply, SessionInfo), reply
        opened.append(reply.session_id)
    listed: list[str] = []
    after = None
    while True:
        page = await bus.request(
            SESSIONS_LIST, ListSessions(integration_id=integration_id, take=10, after=after)
        )
        assert isinstance(page, SessionList), page
        assert len(page.sessions) <= 10
        listed += [info.session_id for info in page.sessions]
        if page.next is None:
            break
        after = page.next
    # Same created_at for all (the clock stands still): the id breaks ties, nothing repeats or hides.
    assert sorted(listed) == sorted(opened)
    everything = await bus.request(SESSIONS_LIST, ListSessions(integration_id=integration_id))
    assert isinstance(everything, SessionList), everything
    assert len(everything.sessions) == 25


async def test_the_cap_ends_the_least_recently_used_session_and_announces_it(
    sessions: SessionsRuntime, bus: Bus, events: EventLog, clock: ManualClock
) -> None:
    integration_id = integration()

    async def open_capped() -> SessionInfo:
        reply = await bus.request(
            SESSIONS_CREATE,
            CreateSession(integration_id=integration_id, principal="static:v1", max_sessions=2),
        )
        assert isinstance(reply, SessionInfo), reply
        clock.advance(1)
        return reply

    first, second = await open_capped(), await open_capped()
    assert isinstance(
        await bus.request(SESSIONS_TOUCH, TouchSessions(session_ids=[first.session_id], seen_at=clock.now)),
        Ok,
    )
    clock.advance(1)
    third = await open_capped()
    closed = await events.wait_for("closed", second.session_id)
    assert closed.reason.startswith("evicted")
    listed = await bus.request(SESSIONS_LIST, ListSessions(integration_id=integration_id))
    assert isinstance(listed, SessionList)
    assert {info.session_id for info in listed.sessions} == {first.session_id, third.session_id}
    assert isinstance(await bus.request(SESSIONS_GET, GetSession(session_id=second.session_id)), NotFound)


async def test_concurrent_opens_never_leave_more_than_the_cap(sessions: SessionsRuntime, bus: Bus) -> None:
    integration_id = integration()
    replies = await asyncio.gather(
        *(
            bus.request(
                SESSIONS_CREATE,
                CreateSession(integration_id=integration_id, principal="static:v1", max_sessions=5),
            )
            for _ in range(30)
        )
    )
    assert all(isinstance(reply, SessionInfo) for reply in replies), replies
    listed = await bus.request(SESSIONS_LIST, ListSessions(integration_id=integration_id))
    assert isinstance(listed, SessionList)
    assert len(listed.sessions) == 5
