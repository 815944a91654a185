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
import itertools
import re
import secrets
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import msgspec
import nats.errors
import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

from skillrelay_common import metrics
from skillrelay_common.messaging import CORRELATION_HEADER, Bus, bound_correlation_id
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


_second_text: tuple[int, str] = (-1, "")


def _now() -> str:
    """RFC 3339 UTC time with milliseconds; the formatted second is reused (called per record)."""
    global _second_text
    now = time.time()
    second = int(now)
    if second != _second_text[0]:
        _second_text = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second_text[1]}.{int((now - second) * 1000):03d}Z"


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
        # Record ids: a random per-recorder prefix and a counter. Unique like a uuid4 (the prefix has
        # 96 random bits) but without a system call per record on the request path.
        self._id_prefix = secrets.token_hex(12)
        self._id_counter = itertools.count()
        self._batch_counter = itertools.count()
        self._ack_waiters: dict[int, _BatchAcks] = {}
        self._ack_prefix = ""
        self._ack_subscription: Subscription | None = None

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
        record_id = f"{self._id_prefix}{next(self._id_counter):08x}"
        return AuditRecord(
            id=record_id,
            source=self.source,
            type=TYPE_PREFIX + kind,
            time=_now(),
            subject=subject,
            data=AuditData(
                kind=kind,
                outcome=scrub_text(outcome)[:64],
                principal=scrub_text(principal) if principal is not None else None,
                latency_ms=round(latency_ms, 3) if latency_ms is not None else None,
                # The request's correlation id when one is bound; else the record's own id.
                correlation_id=bound_correlation_id() or record_id,
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
        """Publish up to ``BATCH`` records pipelined: each goes out with its own reply subject on one
        shared ack inbox, and the batch waits once for JetStream's acknowledgements (a request per
        record, each with its own future and timer, cost about as much CPU as the MCP call audited)."""
        batch = [self._queue[index] for index in range(min(BATCH, len(self._queue)))]
        assert self.stream is not None
        inbox = await self._ack_inbox()
        token = next(self._batch_counter)
        replies = {f"{inbox}.{token}.{index}": record for index, record in enumerate(batch)}
        acks = _BatchAcks(expected=len(replies))
        self._ack_waiters[token] = acks
        started = time.perf_counter()
        try:
            for reply, record in replies.items():
                await self.bus.nc.publish(
                    audit_subject(record.subject, record.data.kind),
                    encode_record(record),
                    reply=reply,
                    headers={
                        "Nats-Msg-Id": record.id,
                        "Nats-Expected-Stream": self.stream.name,
                        CORRELATION_HEADER: record.data.correlation_id or "",
                    },
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(acks.all_answered.wait(), ACK_TIMEOUT)
        finally:
            del self._ack_waiters[token]
        metrics.AUDIT_PUBLISH_SECONDS.observe(time.perf_counter() - started)
        delivered = {replies[reply].id for reply in acks.acknowledged}
        if delivered:
            # Remove by id: the queue may have dropped its oldest records while we awaited.
            self._queue = deque(record for record in self._queue if record.id not in delivered)
            self.published += len(delivered)
            metrics.AUDIT_PUBLISHED.inc(len(delivered))
            metrics.AUDIT_BUFFERED.set(len(self._queue))
        if len(delivered) < len(batch):
            if acks.no_stream:
                self._stream_ready = False  # no stream answers the subject: create it again
            raise RuntimeError(
                f"JetStream acknowledged {len(delivered)} of {len(batch)} audit records"
                + (f": {acks.error}" if acks.error else "")
            )

    async def _ack_inbox(self) -> str:
        if self._ack_subscription is None:
            self._ack_prefix = self.bus.nc.new_inbox()
            self._ack_subscription = await self.bus.nc.subscribe(f"{self._ack_prefix}.>", cb=self._on_ack)
        return self._ack_prefix

    async def _on_ack(self, msg: Msg) -> None:
        token, _, _ = msg.subject[len(self._ack_prefix) + 1 :].partition(".")
        acks = self._ack_waiters.get(int(token)) if token.isdigit() else None
        if acks is None:
            return  # a late acknowledgement of a batch given up on; its retry dedupes by Nats-Msg-Id
        status = (msg.headers or {}).get("Status")
        if status == "503":
            acks.no_stream = True
        elif status is None and b'"error"' not in msg.data:
            acks.acknowledged.add(msg.subject)
        else:
            acks.error = msg.data.decode(errors="replace")[:200] or f"status {status}"
        acks.answered += 1
        if acks.answered >= acks.expected:
            acks.all_answered.set()


@dataclasses.dataclass
class _BatchAcks:
    """JetStream's answers to one pipelined batch, filled by the ack inbox callback."""

    expected: int
    answered: int = 0
    acknowledged: set[str] = dataclasses.field(default_factory=set)
    no_stream: bool = False
    error: str | None = None
    all_answered: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


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
