"""Fills a ``UsageBook`` from the ``AUDIT`` stream: one ordered JetStream consumer per registry replica,
starting a day back (the longest window) and then following every new record.

Nothing is added to the MCP hot path: the edge already records every request into ``AUDIT``; this only
reads. Only ``mcp.request``, ``tool.call`` and ``auth.failure`` subjects are decoded (the kind is in the
subject), so other records cost a string split. Until the consumer has caught up with the stream
(``caught_up``), the figures may be short of the truth, and the answers say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import structlog
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from skillrelay_common.audit import decode_records
from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import AUDIT_STREAM, audit_filter
from skillrelay_registry.usage.book import WINDOWS, UsageBook

_log = structlog.get_logger("skillrelay.registry.usage")
CALL_KINDS = frozenset({"mcp.request", "tool.call"})
REFUSED_KIND = "auth.failure"
PRUNE_EVERY_SECONDS = 30.0
RETRY_SECONDS = 5.0
LOOKBACK = timedelta(seconds=max(seconds * count for seconds, count in WINDOWS.values()))


def _epoch(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def ingest(book: UsageBook, subject: str, data: bytes, now: float) -> int:
    """Add the records of one stored audit message to ``book``; returns how many were counted."""
    parts = subject.split(".", 2)
    if len(parts) != 3 or (parts[2] not in CALL_KINDS and parts[2] != REFUSED_KIND):
        return 0
    integration_id, kind = parts[1], parts[2]
    try:
        records = decode_records(data)
    except msgspec.DecodeError:
        return 0
    counted = 0
    for record in records:
        at = _epoch(record.time)
        if at is None:
            continue
        if kind == REFUSED_KIND:
            book.record_refused(integration_id, at, now=now)
        else:
            tool = record.data.details.get("tool") if kind == "tool.call" else None
            book.record_call(
                integration_id,
                at,
                tool=str(tool) if tool is not None else None,
                outcome=record.data.outcome,
                latency_ms=record.data.latency_ms,
                now=now,
            )
        counted += 1
    return counted


class UsageFeed:
    def __init__(
        self,
        book: UsageBook,
        *,
        stream_name: str = AUDIT_STREAM.name,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.book = book
        self._stream_name = stream_name
        self._clock = clock
        self._bus: Bus | None = None
        self._subscription: Any = None
        self._task: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self.caught_up = False
        self.started_at: float | None = None

    def now(self) -> float:
        return self._clock()

    async def start(self, bus: Bus) -> None:
        """Subscribes in the background (retrying while the stream is missing or NATS is away), so the
        registry starts serving at once."""
        self._bus = bus
        self._task = asyncio.create_task(self._subscribe_until_done(), name="usage-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def _subscribe_until_done(self) -> None:
        assert self._bus is not None
        while self._subscription is None:
            try:
                self.started_at = self._clock()
                self._subscription = await self._bus.js.subscribe(
                    audit_filter(None),
                    stream=self._stream_name,
                    ordered_consumer=True,
                    cb=self._on_message,
                    config=ConsumerConfig(
                        deliver_policy=DeliverPolicy.BY_START_TIME,
                        opt_start_time=datetime.now(UTC) - LOOKBACK,
                    ),
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # no AUDIT stream yet, or NATS is away: try again shortly
                _log.info("usage.feed.waiting", error=type(exc).__name__)
                await asyncio.sleep(RETRY_SECONDS)
        with contextlib.suppress(Exception):  # nothing to replay: caught up already
            if (await self._subscription.consumer_info()).num_pending == 0:
                self.caught_up = True

    async def _on_message(self, msg: Msg) -> None:
        now = self._clock()
        ingest(self.book, msg.subject, msg.data, now)
        if not self.caught_up:
            with contextlib.suppress(Exception):
                self.caught_up = msg.metadata.num_pending == 0
        if now - self._last_prune >= PRUNE_EVERY_SECONDS:
            self._last_prune = now
            self.book.prune(now)
