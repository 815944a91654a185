"""The sessions service holding a million live sessions: ``make bench-scale`` (its second part).

Runs the real sessions service in-process (its NATS handlers, PostgreSQL store and expiry sweeper) on
embedded NATS and PostgreSQL, and talks to it over NATS as the edge does:

1. creates sessions through ``sessions.create`` (8 in flight, capped integrations): created per second;
2. loads the rest of the million straight into the table with ``COPY`` (the service path would take
   hours at that rate on a 2-core machine; what the service then does with them is what is measured);
3. prints the database size per session (table and indexes) and the process's memory per session;
4. touches every session in the edge's batches (``sessions.touch``, 10,000 ids per batch): touched per
   second and UPDATE statements;
5. looks sessions up (``sessions.get``) and pages through an integration (``sessions.list``):
   p50/p99, first page against last page (keyset paging: the last page costs what the first does);
6. lets a slice of them expire and wakes the sweeper: swept per second, against the creation rate.

    .tools/bin/uv run --frozen --no-sync python -m benchmarks.scale_sessions [--sessions 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
import uuid

import asyncpg

from benchmarks.harness import infrastructure
from benchmarks.scale import percentile, rss_bytes
from skillrelay_common.logging import configure_logging
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.sessions import (
    GetSession,
    ListSessions,
    SessionInfo,
    SessionList,
    TouchSessions,
)
from skillrelay_common.settings import DatabaseSettings, NatsSettings, Settings
from skillrelay_common.subjects import SESSIONS_GET, SESSIONS_LIST, SESSIONS_TOUCH
from skillrelay_edge.sessions.manager import SessionManager
from skillrelay_sessions.app import SessionsRuntime
from skillrelay_sessions.service import MAX_SESSIONS_CAP, MAX_TOUCH_BATCH

TTL = 24 * 60 * 60
PRINCIPAL = "static:v1"
GRACE = 60.0
VERSION = "2025-11-25"


def integration_of(index: int) -> str:
    """Integrations of MAX_SESSIONS_CAP sessions each (an integration keeps at most that many)."""
    return f"mcpserver_scale_{index // MAX_SESSIONS_CAP}"


def loaded_id(index: int) -> str:
    """The id of the ``index``-th bulk-loaded session (derived, so the benchmark keeps no list)."""
    return f"scale{index:010d}{'x' * 17}"  # as long as the service's own ids (32 characters)


async def create_through_service(bus: Bus, count: int, in_flight: int = 8) -> float:
    """Sessions per second opened by ``sessions.create`` into capped integrations (the edge's path)."""
    manager = SessionManager(bus, ttl_seconds=TTL)
    remaining = iter(range(count))

    async def worker() -> None:
        for index in remaining:
            await manager.open(
                f"mcpserver_created_{index % 100}",
                PRINCIPAL,
                protocol_version="2025-11-25",
                state={},
                max_sessions=MAX_SESSIONS_CAP,
            )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return count / (time.perf_counter() - started)


async def bulk_load(conn: asyncpg.Connection, first: int, last: int) -> float:
    """Rows ``first``..``last`` written with COPY, as the service writes them; rows per second."""
    now = time.time()
    started = time.perf_counter()
    chunk = 100_000
    for start in range(first, last, chunk):
        records = [
            (
                loaded_id(i),
                integration_of(i),
                PRINCIPAL,
                now - 1 + i * 1e-6,
                now,
                now + TTL,
                "2025-11-25",
                "{}",
            )
            for i in range(start, min(start + chunk, last))
        ]
        await conn.copy_records_to_table(
            "sessions",
            schema_name="sessions",
            records=records,
            columns=[
                "id",
                "integration_id",
                "principal",
                "created_at",
                "last_seen_at",
                "expires_at",
                "protocol_version",
                "state",
            ],
        )
    await conn.execute("ANALYZE sessions.sessions")
    return (last - first) / (time.perf_counter() - started)


async def touch_all(bus: Bus, total: int, in_flight: int = 2) -> tuple[float, int]:
    """Every loaded session touched once in the edge's batches: (sessions per second, batches)."""
    batches = iter(range(0, total, MAX_TOUCH_BATCH))
    sent = 0

    async def worker() -> None:
        nonlocal sent
        for start in batches:
            ids = [loaded_id(i) for i in range(start, min(start + MAX_TOUCH_BATCH, total))]
            await bus.request(SESSIONS_TOUCH, TouchSessions(session_ids=ids, seen_at=time.time()), timeout=60)
            sent += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return total / (time.perf_counter() - started), sent


async def lookups(bus: Bus, total: int, count: int) -> list[float]:
    found: list[float] = []
    for _ in range(count):
        session_id = loaded_id(secrets.randbelow(total))
        started = time.perf_counter()
        reply = await bus.request(SESSIONS_GET, GetSession(session_id=session_id))
        found.append(time.perf_counter() - started)
        assert isinstance(reply, SessionInfo), reply
    return found


async def page_through(bus: Bus, integration_id: str) -> tuple[int, list[float]]:
    """Every live session of one integration, a page (100) at a time: (sessions seen, page times)."""
    times: list[float] = []
    seen = 0
    after = None
    while True:
        started = time.perf_counter()
        page = await bus.request(SESSIONS_LIST, ListSessions(integration_id=integration_id, after=after))
        times.append(time.perf_counter() - started)
        assert isinstance(page, SessionList), page
        seen += len(page.sessions)
        if page.next is None:
            return seen, times
        after = page.next


async def sweep(runtime: SessionsRuntime, conn: asyncpg.Connection, first: int, count: int) -> float:
    """``count`` loaded sessions made expired (past the sweep grace), then swept: per second."""
    past = time.time() - GRACE - 60
    ids = [loaded_id(i) for i in range(first, first + count)]
    await conn.execute(
        "UPDATE sessions.sessions SET last_seen_at = $2, expires_at = $2 WHERE id = ANY($1::text[])",
        ids,
        past,
    )
    assert runtime.sweeper is not None
    started = time.perf_counter()
    runtime.sweeper.wake()
    left = "SELECT count(*) FROM sessions.sessions WHERE expires_at < $1"
    while await conn.fetchval(left, past + 1):  # noqa: ASYNC110 (polls the table the sweeper empties)
        await asyncio.sleep(0.2)
    return count / (time.perf_counter() - started)


async def main(sessions: int, created: int, expire: int) -> None:
    async with infrastructure() as (nats_url, database_url):
        settings = Settings(
            nats=NatsSettings(url=nats_url),
            database=DatabaseSettings(url=database_url),
            session_ttl_seconds=TTL,
        )
        runtime = SessionsRuntime(
            settings,
            sweep_interval_seconds=3600,  # the benchmark wakes it
            sweep_grace_seconds=GRACE,
            durable_prefix=f"bench-{uuid.uuid4().hex[:6]}",
        )
        await runtime.start()
        bus = await Bus.connect(nats_url, "edge")
        conn = await asyncpg.connect(database_url)
        try:
            rss_before = rss_bytes_self()
            rate = await create_through_service(bus, created)
            print(
                f"sessions created:          {created} through sessions.create, {rate:,.0f}/s (8 in flight)"
            )
            loaded = sessions - created
            copy_rate = await bulk_load(conn, 0, loaded)
            live = await conn.fetchval("SELECT count(*) FROM sessions.sessions")
            print(f"bulk-loaded (COPY):        {loaded:,} at {copy_rate:,.0f}/s; live sessions: {live:,}")
            table = await conn.fetchval("SELECT pg_table_size('sessions.sessions')")
            indexes = await conn.fetchval("SELECT pg_indexes_size('sessions.sessions')")
            print(
                f"database size:             {(table + indexes) / 2**20:,.0f} MiB "
                f"({table / live:.0f} B table + {indexes / live:.0f} B indexes = "
                f"{(table + indexes) / live:.0f} B per session)"
            )
            rss_after = rss_bytes_self()
            print(
                f"service memory:            {rss_before / 2**20:.0f} MiB -> {rss_after / 2**20:.0f} MiB "
                f"({(rss_after - rss_before) / live:.1f} B per session; nothing is kept per session)"
            )
            assert runtime.store is not None
            counters = runtime.store.counters
            statements = counters.touch_statements
            touched, batches = await touch_all(bus, loaded)
            print(
                f"sessions touched:          {loaded:,} at {touched:,.0f}/s, {batches} batches of "
                f"{MAX_TOUCH_BATCH:,}, {counters.touch_statements - statements} UPDATE statements"
            )
            times = await lookups(bus, loaded, 2000)
            print(
                f"sessions.get p50/p99:      {percentile(times, 0.5) * 1e3:.2f} / "
                f"{percentile(times, 0.99) * 1e3:.2f} ms"
            )
            seen, pages = await page_through(bus, integration_of(0))
            print(
                f"sessions.list paging:      {seen:,} sessions in {len(pages)} pages; page p50/p99 "
                f"{percentile(pages, 0.5) * 1e3:.2f} / {percentile(pages, 0.99) * 1e3:.2f} ms; "
                f"first {pages[0] * 1e3:.2f} ms, last {pages[-1] * 1e3:.2f} ms"
            )
            swept = await sweep(runtime, conn, loaded - expire, expire)
            keeps_up = "keeps up with" if swept >= rate else "is slower than"
            print(f"sessions swept:            {expire:,} expired at {swept:,.0f}/s ({keeps_up} creation)")
        finally:
            await conn.close()
            await bus.close()
            await runtime.stop()


def rss_bytes_self() -> int:
    return rss_bytes(os.getpid())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--created", type=int, default=2_000, help="of them, created through the service")
    parser.add_argument("--expire", type=int, default=10_000, help="of them, expired and swept")
    arguments = parser.parse_args()
    configure_logging("warning", False, service="bench")
    asyncio.run(main(arguments.sessions, arguments.created, arguments.expire))
