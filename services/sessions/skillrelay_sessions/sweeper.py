"""Background task deleting expired sessions (and announcing each) at a fixed interval."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from skillrelay_sessions.service import SessionService

_log = structlog.get_logger("skillrelay.sessions.sweeper")


class ExpirySweeper:
    def __init__(self, service: SessionService, interval_seconds: float) -> None:
        self._service = service
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sessions-sweeper")

    def wake(self) -> None:
        """Sweep now instead of at the next interval (tests, operators)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                # Keep going while full batches come back, so a backlog drains without waiting.
                while await self._service.sweep_expired() >= self._service.sweep_batch:
                    pass
            except Exception:
                _log.exception("sessions.sweep.failed")
