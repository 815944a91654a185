"""Periodic refresh of skillset sources (``SKILLRELAY_SOURCE_REFRESH_SECONDS``; 0 turns it off): every
registry replica looks for due sources now and then, and claims them in the database, so each source is
read once per period whichever replicas run."""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog

_log = structlog.get_logger("skillrelay.registry.sources")
# How often a replica looks for due sources (at most; a shorter period looks more often).
MAX_POLL_SECONDS = 60.0


class DueSources(Protocol):
    async def refresh_due_sources(self, limit: int = 20) -> int: ...


class SourceRefresher:
    def __init__(self, sources: DueSources, period_seconds: int) -> None:
        self._sources = sources
        self._poll = min(MAX_POLL_SECONDS, max(1.0, period_seconds / 4))
        self._enabled = period_seconds > 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            try:
                # A full batch means more may be due: look again at once.
                while await self._sources.refresh_due_sources() == 20:
                    pass
            except Exception:
                _log.exception("registry.source.periodic_refresh_failed")
