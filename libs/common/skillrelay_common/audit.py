"""Audit records published into the durable ``AUDIT`` JetStream stream without ever slowing a caller.

``AuditRecorder.record`` builds the record and appends it to a bounded in-memory queue; a background
task publishes from the queue in small concurrent batches and removes a record only once JetStream
acknowledged it (so an acknowledged record is on disk: the server runs with ``sync_interval: always``).
While NATS is down the queue holds the records and the task retries after the reconnect; the record id
is the ``Nats-Msg-Id``, so a record whose acknowledgement was lost is not stored twice. When the queue
is full the oldest record is dropped and counted (``skillrelay_audit_dropped_total``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import msgspec
import nats.errors
import nats.js.errors
import structlog
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

from skillrelay_common import metrics
from skillrelay_common.messaging import CORRELATION_HEADER, Bus, correlation_id
from skillrelay_common.schemas.audit import TYPE_PREFIX, AuditData, AuditRecord, scrub, scrub_text
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import AUDIT_STREAM, Stream, audit_subject

_log = structlog.get_logger("skillrelay.audit")
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AuditRecord)
# One subject token: anything else (dots, wildcards, spaces) would change the subject's meaning.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_KIND = re.compile(r"^[a-z0-9_-]{1,40}(\.[a-z0-9_-]{1,40}){0,3}$")
UNKNOWN_INTEGRATION = "_unknown"

BATCH = 64
ACK_TIMEOUT = 5.0


def audit_stream(settings: Settings) -> Stream:
    """The ``AUDIT`` stream with the retention and replicas the settings ask for."""
    return dataclasses.replace(
        AUDIT_STREAM,
        max_age_seconds=float(settings.audit_max_age_seconds),
        max_bytes=settings.audit_max_bytes,
        replicas=settings.audit_replicas,
    )


def stream_config(stream: Stream) -> StreamConfig:
    return StreamConfig(
        name=stream.name,
        subjects=list(stream.subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=stream.max_age_seconds,
        max_bytes=stream.max_bytes,
        duplicate_window=stream.duplicate_window_seconds,
        num_replicas=stream.replicas,
        allow_direct=True,
    )


async def ensure_audit_stream(bus: Bus, stream: Stream) -> None:
    config = stream_config(stream)
    try:
        await bus.js.add_stream(config)
    except nats.js.errors.BadRequestError:
        await bus.js.update_stream(config)


def decode_record(data: bytes) -> AuditRecord:
    return _decoder.decode(data)


def encode_record(record: AuditRecord) -> bytes:
    return _encoder.encode(record)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditRecorder:
    """One per service instance. ``record`` never blocks and never raises."""

    def __init__(
        self,
        bus: Bus,
        source: str,
        *,
        max_buffer: int = 10_000,
        stream: Stream | None = None,
        retry_wait: float = 0.25,
    ) -> None:
        self.bus = bus
        self.source = f"/skillrelay/{source}/{bus.instance_id}"
        self.max_buffer = max(1, max_buffer)
        self.stream = stream
        self.retry_wait = retry_wait
        self.dropped = 0
        self.published = 0
        self._queue: deque[AuditRecord] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stream_ready = False
        self._stopping = False
        self._failing = False

    # -- recording (any task, never awaits) -------------------------------------------------------

    def record(
        self,
        kind: str,
        integration_id: str,
        *,
        outcome: str,
        principal: str | None = None,
        latency_ms: float | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Queue one record. Never blocks, never raises; buffered while NATS is down."""
        try:
            self._enqueue(self._build(kind, integration_id, outcome, principal, latency_ms, data))
        except Exception:  # an audit bug must never fail the request being audited
            _log.exception("audit.record.failed", kind=kind)

    def _build(
        self,
        kind: str,
        integration_id: str,
        outcome: str,
        principal: str | None,
        latency_ms: float | None,
        data: dict[str, Any] | None,
    ) -> AuditRecord:
        if not _KIND.match(kind):
            raise ValueError(f"audit kind {kind!r} is not dotted lowercase words")
        subject = integration_id if _TOKEN.match(integration_id or "") else UNKNOWN_INTEGRATION
        return AuditRecord(
            id=uuid.uuid4().hex,
            source=self.source,
            type=TYPE_PREFIX + kind,
            time=_now(),
            subject=subject,
            data=AuditData(
                kind=kind,
                outcome=scrub_text(outcome)[:64],
                principal=scrub_text(principal) if principal is not None else None,
                latency_ms=round(latency_ms, 3) if latency_ms is not None else None,
                correlation_id=correlation_id(),
                details=scrub(data) if data else {},
            ),
        )

    def _enqueue(self, record: AuditRecord) -> None:
        if len(self._queue) >= self.max_buffer:
            self._queue.popleft()
            self.dropped += 1
            metrics.AUDIT_DROPPED.inc()
        self._queue.append(record)
        metrics.AUDIT_BUFFERED.set(len(self._queue))
        self._wakeup.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create or update the ``AUDIT`` stream (if NATS answers now) and start publishing."""
        if self.stream is None:
            self.stream = audit_stream(Settings.from_env())
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ensure_stream(), ACK_TIMEOUT)
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"audit-publisher-{self.source}")

    async def stop(self, timeout: float = 5.0) -> None:
        """Publish what is queued (for up to ``timeout`` seconds), then stop the publisher."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout)
        self._stopping = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._queue:
            _log.warning("audit.unpublished_at_stop", count=len(self._queue))

    async def flush(self) -> None:
        """Wait until every record queued so far has been acknowledged (or dropped)."""
        while self._queue:
            if self._task is None or self._task.done():
                raise RuntimeError("the audit publisher is not running")
            await asyncio.sleep(0.01)

    # -- publishing --------------------------------------------------------------------------------

    async def _ensure_stream(self) -> None:
        assert self.stream is not None
        await ensure_audit_stream(self.bus, self.stream)
        self._stream_ready = True

    async def _run(self) -> None:
        while not self._stopping:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if not self.bus.nc.is_connected:
                await asyncio.sleep(self.retry_wait)
                continue
            try:
                if not self._stream_ready:
                    await asyncio.wait_for(self._ensure_stream(), ACK_TIMEOUT)
                await self._publish_batch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Warn once per streak of failures (NATS down is expected; a stream that cannot be
                # created, e.g. more replicas than servers, is a configuration error).
                if not self._failing:
                    _log.warning(
                        "audit.publish.failing",
                        error=str(exc) or type(exc).__name__,
                        stream_ready=self._stream_ready,
                        pending=len(self._queue),
                    )
                self._failing = True
                await asyncio.sleep(self.retry_wait)
            else:
                self._failing = False

    async def _publish_batch(self) -> None:
        batch = [self._queue[index] for index in range(min(BATCH, len(self._queue)))]
        results = await asyncio.gather(*(self._publish(record) for record in batch), return_exceptions=True)
        delivered = {record.id for record, result in zip(batch, results, strict=True) if result is None}
        failures = [result for result in results if isinstance(result, BaseException)]
        if delivered:
            # Remove by id: the queue may have dropped its oldest records while we awaited.
            self._queue = deque(record for record in self._queue if record.id not in delivered)
            self.published += len(delivered)
            metrics.AUDIT_PUBLISHED.inc(len(delivered))
            metrics.AUDIT_BUFFERED.set(len(self._queue))
        if failures:
            no_stream = (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError)
            if any(isinstance(exc, no_stream) for exc in failures):
                self._stream_ready = False  # no stream answers the subject: create it again
            raise failures[0]

    async def _publish(self, record: AuditRecord) -> None:
        started = time.perf_counter()
        assert self.stream is not None
        await self.bus.js.publish(
            audit_subject(record.subject, record.data.kind),
            encode_record(record),
            timeout=ACK_TIMEOUT,
            stream=self.stream.name,
            headers={
                "Nats-Msg-Id": record.id,
                CORRELATION_HEADER: record.data.correlation_id or "",
            },
        )
        metrics.AUDIT_PUBLISH_SECONDS.observe(time.perf_counter() - started)


# -- reading stored records (REST audit/list, tests) --------------------------------------------------


async def read_records(
    bus: Bus,
    subject_filter: str,
    *,
    start: int = 1,
    limit: int = 50,
    stream_name: str = AUDIT_STREAM.name,
    end: int | None = None,
) -> tuple[list[tuple[int, AuditRecord]], int | None]:
    """Stored records matching ``subject_filter`` from stream sequence ``start`` on (up to ``end``,
    inclusive, when given), oldest first.

    Returns ``(sequence, record)`` pairs and the sequence to continue from (None when none are left).
    """
    found: list[tuple[int, AuditRecord]] = []
    sequence = max(1, start)
    while len(found) <= limit:
        try:
            message = await bus.js.get_msg(stream_name, seq=sequence, subject=subject_filter, next=True)
        except nats.js.errors.NotFoundError:
            return found, None
        if message.seq is None or message.data is None or (end is not None and message.seq > end):
            return found, None
        if len(found) == limit:
            return found, message.seq
        with contextlib.suppress(msgspec.DecodeError):
            found.append((message.seq, decode_record(message.data)))
        sequence = message.seq + 1
    return found, sequence
