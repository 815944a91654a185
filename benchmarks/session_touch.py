"""What keeping MCP sessions alive costs: one database write per request vs the edge's coalesced
write-behind touches (``SessionManager.touch`` + one ``SESSIONS_TOUCH`` batch per flush interval).

Runs a real sessions service in-process on embedded PostgreSQL and NATS (or on
``SKILLRELAY_NATS_URL`` / ``SKILLRELAY_DATABASE_URL`` when set) and reports, for the same stream of
MCP requests over a set of sessions:

- per-request write: UPDATE statements, rows written, WAL bytes, and throughput of the touch path
  (each request awaits a NATS round trip and a database write, 32 requests in flight);
- coalesced: the same numbers when each request only calls ``touch()`` and the flusher writes one
  batch per interval; plus the cost of ``touch()`` itself on the request path.

    .tools/bin/uv run --frozen --no-sync python -m benchmarks.session_touch [--requests 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass

import asyncpg

from benchmarks.harness import infrastructure
from skillrelay_common.logging import configure_logging
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.sessions import TouchSessions
from skillrelay_common.settings import DatabaseSettings, NatsSettings, Settings
from skillrelay_common.subjects import SESSIONS_TOUCH
from skillrelay_edge.sessions.manager import SessionManager
from skillrelay_sessions.app import SessionsRuntime

TTL = 24 * 60 * 60


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    statements: int
    rows: int
    wal_bytes: int

    def line(self) -> str:
        per_10k = 10_000 / self.requests
        return (
            f"{self.name:<34} {self.requests / self.seconds:>12,.0f} {self.statements * per_10k:>12,.0f} "
            f"{self.rows * per_10k:>12,.0f} {self.wal_bytes * per_10k / 1024:>12,.0f}"
        )


async def wal_position(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"))
    finally:
        await conn.close()


async def write_per_request(
    runtime: SessionsRuntime, bus: Bus, database_url: str, ids: list[str], requests: int, in_flight: int = 32
) -> Result:
    """What an edge without batching does: every MCP request awaits its own keep-alive write."""
    assert runtime.store is not None
    counters = runtime.store.counters
    statements, rows, wal = counters.touch_statements, counters.touched_rows, await wal_position(database_url)
    queue = list(range(requests))

    async def worker() -> None:
        while queue:
            index = queue.pop()
            touch = TouchSessions(session_ids=[ids[index % len(ids)]], seen_at=time.time())
            await bus.request(SESSIONS_TOUCH, touch)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    seconds = time.perf_counter() - started
    return Result(
        "one write per request",
        requests,
        seconds,
        counters.touch_statements - statements,
        counters.touched_rows - rows,
        await wal_position(database_url) - wal,
    )


async def coalesced(
    runtime: SessionsRuntime,
    bus: Bus,
    database_url: str,
    ids: list[str],
    requests: int,
    rate: float,
    interval: float,
) -> tuple[Result, float]:
    """The edge's path: ``touch()`` per request, one batch per flush interval, at ``rate`` requests/s."""
    assert runtime.store is not None
    manager = SessionManager(bus, ttl_seconds=TTL, flush_interval=interval)
    await manager.start()
    counters = runtime.store.counters
    statements, rows, wal = counters.touch_statements, counters.touched_rows, await wal_position(database_url)
    touch_ns: list[float] = []
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    started = time.perf_counter()
    sent = 0
    while sent < requests:
        burst_started = time.perf_counter_ns()
        for _ in range(min(per_tick, requests - sent)):
            manager.touch(ids[sent % len(ids)])
            sent += 1
        touch_ns.append((time.perf_counter_ns() - burst_started) / per_tick)
        await asyncio.sleep(tick)
    await manager.stop()  # flushes the last batch
    seconds = time.perf_counter() - started
    result = Result(
        f"coalesced, flush every {interval:g} s",
        requests,
        seconds,
        counters.touch_statements - statements,
        counters.touched_rows - rows,
        await wal_position(database_url) - wal,
    )
    return result, statistics.median(touch_ns)


async def main(requests: int, naive_requests: int, sessions: int, rate: float, interval: float) -> None:
    async with infrastructure() as (nats_url, database_url):
        settings = Settings(
            nats=NatsSettings(url=nats_url),
            database=DatabaseSettings(url=database_url),
            session_ttl_seconds=TTL,
        )
        runtime = SessionsRuntime(settings, durable_prefix=f"bench-{uuid.uuid4().hex[:6]}")
        await runtime.start()
        bus = await Bus.connect(nats_url, "edge")
        try:
            opener = SessionManager(bus, ttl_seconds=TTL)
            ids = [
                (
                    await opener.open("mcpserver_bench", "static:v1", protocol_version=None, state={})
                ).session_id
                for _ in range(sessions)
            ]
            naive = await write_per_request(runtime, bus, database_url, ids, min(requests, naive_requests))
            batched, touch_cost = await coalesced(runtime, bus, database_url, ids, requests, rate, interval)
        finally:
            await bus.close()
            await runtime.stop()
    print(
        f"{sessions} sessions; per-request run: {naive.requests:,} requests, 32 in flight; coalesced run: "
        f"{batched.requests:,} requests paced at {rate:,.0f}/s. Counts are scaled to 10k requests."
    )
    print(
        f"{'keep-alive path':<34} {'requests/s':>12} {'UPDATEs/10k':>12} {'rows/10k':>12} {'WAL KiB/10k':>12}"
    )
    print(naive.line())
    print(batched.line())
    print(f"touch() on the request path: {touch_cost:,.0f} ns median (no I/O); the per-request path awaits")
    print(f"a NATS round trip and a database commit: {naive.seconds / naive.requests * 32 * 1e3:.2f} ms each")
    print("(coalesced requests/s is the paced offered load, not a limit of the path)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument(
        "--naive-requests",
        type=int,
        default=2_000,
        help="requests in the per-request-write run (scaled to 10k)",
    )
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2_000.0, help="requests/s offered in the coalesced run")
    parser.add_argument("--interval", type=float, default=2.0, help="flush interval of the coalesced run")
    arguments = parser.parse_args()
    configure_logging("warning", False, service="bench")
    asyncio.run(
        main(
            arguments.requests,
            arguments.naive_requests,
            arguments.sessions,
            arguments.rate,
            arguments.interval,
        )
    )
