"""The edge's SessionManager as two edge replicas would use it, against a real sessions service on
real PostgreSQL and NATS. A manual clock drives expiry; nothing here depends on timing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.sessions import SessionInfo
from skillrelay_devstack.sessions import ManualClock, running_sessions
from skillrelay_devstack.testing import SESSIONS_TTL as TTL
from skillrelay_edge.sessions.manager import SessionManager, SessionsUnavailable
from skillrelay_sessions.app import SessionsRuntime


@asynccontextmanager
async def _edge(
    nats_url: str, clock: ManualClock, name: str | None = None, cache_seconds: float = 10.0
) -> AsyncIterator[SessionManager]:
    """One edge's SessionManager on its own NATS connection; with a ``name``, a replica that also
    answers the other replicas (``register``)."""
    instance_id = f"{name}-{uuid.uuid4().hex[:6]}" if name else None
    bus = await Bus.connect(nats_url, "edge", instance_id=instance_id)
    # A long flush interval: tests flush explicitly, so batching is deterministic.
    manager = SessionManager(
        bus, ttl_seconds=TTL, clock=clock, flush_interval=3600, cache_seconds=cache_seconds
    )
    if name:
        manager.register(bus)
    await manager.start()
    try:
        yield manager
    finally:
        await manager.stop()
        await bus.close()


@pytest.fixture
async def replicas(
    nats_url: str, clock: ManualClock, sessions: SessionsRuntime
) -> AsyncIterator[tuple[SessionManager, SessionManager]]:
    async with _edge(nats_url, clock, "edge-a") as first, _edge(nats_url, clock, "edge-b") as second:
        yield first, second


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait until ``check`` holds (events travel asynchronously between replicas)."""

    async def poll() -> None:
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def integration() -> str:
    return f"mcpserver_{uuid.uuid4().hex[:12]}"


async def test_a_session_opened_on_one_replica_resolves_on_the_other_with_its_binding(
    replicas: tuple[SessionManager, SessionManager],
) -> None:
    a, b = replicas
    integration_id, other_integration = integration(), integration()
    opened = await a.open(integration_id, "static:v3", protocol_version="2025-11-25", state={"x": 1})
    assert len(opened.session_id) >= 32 and opened.session_id.isascii() and opened.session_id.isprintable()

    found = await b.resolve(opened.session_id, integration_id, "static:v3")
    assert isinstance(found, SessionInfo)
    assert found.protocol_version == "2025-11-25" and found.state == {"x": 1}
    # Another principal (an old token version, an OAuth user) or another integration: not theirs.
    assert await b.resolve(opened.session_id, integration_id, "static:v2") is None
    assert await b.resolve(opened.session_id, integration_id, "oauth:eve") is None
    assert await a.resolve(opened.session_id, other_integration, "static:v3") is None
    assert await a.resolve("no-such-session", integration_id, "static:v3") is None


async def test_closing_on_one_replica_answers_none_on_the_other_without_waiting_for_its_cache(
    replicas: tuple[SessionManager, SessionManager],
) -> None:
    a, b = replicas
    integration_id = integration()
    opened = await a.open(integration_id, "oauth:alice", protocol_version=None, state={})
    assert await b.resolve(opened.session_id, integration_id, "oauth:alice") is not None
    assert b.cached_sessions == 1  # b would answer from its cache from now on

    assert await a.close(opened.session_id) is True
    # The manual clock does not move, so b's cache never times out: only the closed event clears it.
    await eventually(lambda: _is_gone(b, opened.session_id, integration_id, "oauth:alice"))
    assert await a.resolve(opened.session_id, integration_id, "oauth:alice") is None
    assert await a.close(opened.session_id) is False


async def _is_gone(manager: SessionManager, session_id: str, integration_id: str, principal: str) -> bool:
    return await manager.resolve(session_id, integration_id, principal) is None


async def test_state_updated_on_one_replica_is_seen_on_the_other(
    replicas: tuple[SessionManager, SessionManager],
) -> None:
    a, b = replicas
    integration_id = integration()
    opened = await a.open(integration_id, "static:v1", protocol_version="2025-06-18", state={"caps": {}})
    assert await b.resolve(opened.session_id, integration_id, "static:v1") is not None

    updated = await a.update_state(opened.session_id, {"logLevel": "warning", "subscriptions": ["file:///a"]})
    assert updated is not None and updated.state["logLevel"] == "warning"

    async def b_sees_it() -> bool:
        info = await b.resolve(opened.session_id, integration_id, "static:v1")
        return info is not None and info.state.get("logLevel") == "warning"

    await eventually(b_sees_it)
    assert await a.update_state("no-such-session", {"logLevel": "debug"}) is None


async def test_touches_are_coalesced_into_one_write_per_flush(
    replicas: tuple[SessionManager, SessionManager], sessions: SessionsRuntime, clock: ManualClock
) -> None:
    a, _ = replicas
    integration_id = integration()
    opened = [await a.open(integration_id, "static:v1", protocol_version=None, state={}) for _ in range(10)]
    assert sessions.store is not None
    statements, rows = sessions.store.counters.touch_statements, sessions.store.counters.touched_rows
    clock.advance(1)
    for _ in range(100):  # 1000 MCP requests over 10 sessions
        for session in opened:
            assert await a.resolve(session.session_id, integration_id, "static:v1") is not None
            a.touch(session.session_id)
    await a.flush()
    assert sessions.store.counters.touch_statements - statements == 1
    assert sessions.store.counters.touched_rows - rows == 10
    assert a.pending_touches == 0


async def test_use_keeps_a_session_alive_across_replicas_beyond_its_first_ttl(
    replicas: tuple[SessionManager, SessionManager], clock: ManualClock
) -> None:
    a, b = replicas
    integration_id = integration()
    opened = await a.open(integration_id, "static:v1", protocol_version=None, state={})
    for _ in range(3):
        clock.advance(TTL - 5)
        assert await a.resolve(opened.session_id, integration_id, "static:v1") is not None
        a.touch(opened.session_id)
        await a.flush()
    alive = await b.resolve(opened.session_id, integration_id, "static:v1")
    assert alive is not None and alive.expires_at == clock.now + TTL

    clock.advance(TTL + 1)  # not used for longer than the TTL
    assert await b.resolve(opened.session_id, integration_id, "static:v1") is None
    assert await a.resolve(opened.session_id, integration_id, "static:v1") is None


async def test_resolve_counts_its_own_unsent_touch_before_asking_the_service(
    replicas: tuple[SessionManager, SessionManager], clock: ManualClock
) -> None:
    a, _ = replicas
    integration_id = integration()
    opened = await a.open(integration_id, "static:v1", protocol_version=None, state={})
    clock.advance(TTL - 100)
    a.touch(opened.session_id)  # a use well before expiry, its batch not yet sent
    clock.advance(101)  # past the stored expiry; the cache entry is too old to answer
    found = await a.resolve(opened.session_id, integration_id, "static:v1")
    assert found is not None and found.last_seen_at == clock.now - 101
    assert a.touch_batches_sent == 1


async def test_a_touch_close_to_expiry_is_flushed_at_once(
    nats_url: str, clock: ManualClock, sessions: SessionsRuntime
) -> None:
    async with _edge(nats_url, clock) as manager:
        integration_id = integration()
        opened = await manager.open(integration_id, "static:v1", protocol_version=None, state={})
        clock.advance(TTL - 10)  # inside the urgent window (ttl / 10)
        assert await manager.resolve(opened.session_id, integration_id, "static:v1") is not None
        manager.touch(opened.session_id)

        async def written() -> bool:
            return manager.touch_batches_sent == 1

        await eventually(written)
        # The cached copy learnt the new expiry, so the next uses wait for the normal flush again.
        cached = await manager.resolve(opened.session_id, integration_id, "static:v1")
        assert cached is not None and cached.expires_at == clock.now + TTL


async def test_the_flusher_sends_batches_by_itself_and_stop_flushes_the_rest(
    nats_url: str, clock: ManualClock, sessions: SessionsRuntime
) -> None:
    bus = await Bus.connect(nats_url, "edge")
    manager = SessionManager(bus, ttl_seconds=TTL, clock=clock, flush_interval=0.05)
    await manager.start()
    integration_id = integration()
    opened = await manager.open(integration_id, "static:v1", protocol_version=None, state={})
    manager.touch(opened.session_id)

    async def flushed() -> bool:
        return manager.pending_touches == 0 and manager.touch_batches_sent >= 1

    await eventually(flushed)
    clock.advance(7)
    manager.touch(opened.session_id)
    await manager.stop()
    await bus.close()
    assert manager.pending_touches == 0
    assert sessions.service is not None
    stored = await sessions.service.get(opened.session_id)
    assert isinstance(stored, SessionInfo) and stored.last_seen_at == clock.now


async def test_expiry_swept_by_the_service_reaches_every_replica(
    replicas: tuple[SessionManager, SessionManager], sessions: SessionsRuntime, clock: ManualClock
) -> None:
    a, b = replicas
    integration_id = integration()
    opened = await a.open(integration_id, "static:v1", protocol_version=None, state={})
    assert await b.resolve(opened.session_id, integration_id, "static:v1") is not None
    clock.advance(TTL + 61)
    assert sessions.service is not None and await sessions.service.sweep_expired() == 1

    async def dropped() -> bool:
        return b.cached_sessions == 0

    await eventually(dropped)
    assert await b.resolve(opened.session_id, integration_id, "static:v1") is None


async def test_a_lost_nats_connection_drops_every_cached_session(
    replicas: tuple[SessionManager, SessionManager],
) -> None:
    a, _ = replicas
    integration_id = integration()
    opened = await a.open(integration_id, "static:v1", protocol_version=None, state={})
    assert a.cached_sessions == 1
    a._bus.nc.stats["reconnects"] += 1  # what nats-py records after it reconnected
    assert await a.resolve(opened.session_id, integration_id, "static:v1") is not None
    assert a.cached_sessions == 1  # dropped, then fetched again from the service


async def test_sessions_survive_a_restart_of_the_sessions_service(
    nats_url: str, database_url: str, clock: ManualClock
) -> None:
    async with _edge(nats_url, clock, cache_seconds=0) as manager:
        integration_id = integration()
        async with running_sessions(nats_url, database_url, clock, ttl_seconds=TTL):
            opened = await manager.open(integration_id, "oauth:bob", protocol_version=None, state={"k": "v"})
        clock.advance(1)  # the cache (0 s) no longer answers: the service must
        with pytest.raises(SessionsUnavailable):
            await manager.resolve(opened.session_id, integration_id, "oauth:bob")
        async with running_sessions(nats_url, database_url, clock, ttl_seconds=TTL):
            found = await manager.resolve(opened.session_id, integration_id, "oauth:bob")
            assert found is not None and found.state == {"k": "v"}


async def test_subscriptions_changed_on_two_replicas_at_once_keep_both(
    replicas: tuple[SessionManager, SessionManager],
) -> None:
    a, b = replicas
    integration_id = integration()
    opened = await a.open(integration_id, "static:v1", protocol_version=None, state={})
    uris = [f"file:///{n}" for n in range(10)]
    await asyncio.gather(
        *(
            (a if n % 2 else b).update_state(opened.session_id, {}, add_items={"subscriptions": [uri]})
            for n, uri in enumerate(uris)
        )
    )
    removed = await b.update_state(opened.session_id, {}, remove_items={"subscriptions": uris[:3]})
    assert removed is not None and sorted(removed.state["subscriptions"]) == sorted(uris[3:])


async def test_touches_that_cannot_be_written_are_kept_and_written_later(
    nats_url: str, database_url: str, clock: ManualClock
) -> None:
    async with _edge(nats_url, clock) as manager:
        async with running_sessions(nats_url, database_url, clock, ttl_seconds=TTL):
            opened = await manager.open(integration(), "static:v1", protocol_version=None, state={})
        clock.advance(30)
        manager.touch(opened.session_id)
        await manager.flush()  # no sessions service answers
        assert manager.pending_touches == 1
        async with running_sessions(nats_url, database_url, clock, ttl_seconds=TTL) as sessions:
            await manager.flush()
            assert manager.pending_touches == 0
            assert sessions.service is not None
            stored = await sessions.service.get(opened.session_id)
            assert isinstance(stored, SessionInfo) and stored.last_seen_at == clock.now
