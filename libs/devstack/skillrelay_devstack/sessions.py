"""Helpers for tests and benchmarks that run a sessions service in-process on real servers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from skillrelay_common.settings import DatabaseSettings, NatsSettings, Settings
from skillrelay_sessions.app import SessionsRuntime


class ManualClock:
    """A clock that moves only when told to (seconds since the epoch)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def sessions_settings(nats_url: str, database_url: str, ttl_seconds: int = 24 * 60 * 60) -> Settings:
    return Settings(
        nats=NatsSettings(url=nats_url),
        database=DatabaseSettings(url=database_url, pool_size=4),
        session_ttl_seconds=ttl_seconds,
    )


@asynccontextmanager
async def running_sessions(
    nats_url: str,
    database_url: str,
    clock: ManualClock,
    *,
    ttl_seconds: int = 24 * 60 * 60,
    sweep_interval_seconds: float = 3600.0,
    sweep_grace_seconds: float = 60.0,
    durable_prefix: str | None = None,
) -> AsyncIterator[SessionsRuntime]:
    """A started sessions service; the sweeper runs only when woken unless an interval is given."""
    runtime = SessionsRuntime(
        sessions_settings(nats_url, database_url, ttl_seconds),
        clock=clock,
        sweep_interval_seconds=sweep_interval_seconds,
        sweep_grace_seconds=sweep_grace_seconds,
        durable_prefix=durable_prefix or f"sessions-test-{uuid.uuid4().hex[:8]}",
    )
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
