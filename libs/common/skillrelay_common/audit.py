"""Audit records published into the durable ``AUDIT`` JetStream stream without ever slowing a caller.

``AuditRecorder.record`` builds the record and appends it to a bounded in-memory queue; a background
task publishes from the queue and forgets a record only once JetStream acknowledged it (so an
acknowledged record is on disk: the server runs with ``sync_interval: always``).

Group commit: the server syncs every stored *message* to disk, which caps one-record-per-message
publishing at a few thousand records a second (measured: ~3,500/s on the development machine) and made
the sync the largest cost of a busy edge. So records queued together are sent as **parcels**: up to
``RECORDS_PER_MESSAGE`` records of one subject (``audit.<integrationId>.<kind>``) in one message, a
CloudEvents JSON batch (an array of records; a lone record is sent as a plain object). A parcel is
formed once and resent unchanged until acknowledged, and its ``Nats-Msg-Id`` (first record id + count)
lets the stream drop a resend whose acknowledgement was lost. Readers use ``decode_records``.

While NATS is down the records wait and the task retries after the reconnect. When the buffer is full
the oldest records are dropped and counted (``skillrelay_audit_dropped_total``).
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
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.audit import TYPE_PREFIX, AuditData, AuditRecord, scrub, scrub_text
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import AUDIT_STREAM, Stream, audit_subject
from skillrelay_worker.correlation import CORRELATION_HEADER, bound_correlation_id
from skillrelay_worker.nats_lane import NO_RESPONDERS

_log = structlog.get_logger("skillrelay.audit")
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AuditRecord)
_batch_decoder = msgspec.json.Decoder(list[AuditRecord])
# One subject token: anything else (dots, wildcards, spaces) would change the subject's meaning.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_KIND = re.compile(r"^[a-z0-9_-]{1,40}(\.[a-z0-9_-]{1,40}){0,3}$")
UNKNOWN_INTEGRATION = "_unknown"

RECORDS_PER_MESSAGE = 64
# Messages published before one wait for their acknowledgements.
MESSAGES_PER_ROUND = 16
ACK_TIMEOUT = 5.0
# read_records positions: stream sequence * POSITION_BASE + index of the record in its message.
POSITION_BASE = 256


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


def decode_records(data: bytes) -> list[AuditRecord]:
    """The records of one stored message: a single record, or a JSON array of them (a parcel)."""
    if data[:1] == b"[":
        return _batch_decoder.decode(data)
    return [_decoder.decode(data)]


def encode_record(record: AuditRecord) -> bytes:
    return _encoder.encode(record)


@dataclasses.dataclass(eq=False)
class _Parcel:
    """Records of one subject stored as one JetStream message."""

    subject: str
    records: list[AuditRecord]

    @property
    def message_id(self) -> str:
        return f"{self.records[0].id}+{len(self.records)}"

    def payload(self) -> bytes:
        return _encoder.encode(self.records[0] if len(self.records) == 1 else self.records)


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
        # Formed from the queue's oldest records and resent unchanged until acknowledged.
        self._parcels: deque[_Parcel] = deque()
        self._parcelled = 0
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
        if self.pending >= self.max_buffer:
            self._drop_oldest()
        self._queue.append(record)
        metrics.AUDIT_BUFFERED.set(self.pending)
        self._wakeup.set()

    def _drop_oldest(self) -> None:
        # A parcel is dropped whole: changing it would change its message id (and so its dedupe).
        if self._parcels:
            count = len(self._parcels.popleft().records)
            self._parcelled -= count
        else:
            self._queue.popleft()
            count = 1
        self.dropped += count
        metrics.AUDIT_DROPPED.inc(count)

    @property
    def pending(self) -> int:
        return len(self._queue) + self._parcelled

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
        if self.pending:
            _log.warning("audit.unpublished_at_stop", count=self.pending)

    async def flush(self) -> None:
        """Wait until every record queued so far has been acknowledged (or dropped)."""
        while self.pending:
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
            if not self.pending:
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
                        pending=self.pending,
                    )
                self._failing = True
                await asyncio.sleep(self.retry_wait)
            else:
                self._failing = False

    def _form_parcels(self) -> None:
        """Parcel the oldest queued records: grouped by subject in order, ``RECORDS_PER_MESSAGE`` each."""
        groups: dict[str, list[AuditRecord]] = {}
        taken = min(len(self._queue), RECORDS_PER_MESSAGE * MESSAGES_PER_ROUND)
        for _ in range(taken):
            record = self._queue.popleft()
            subject = audit_subject(record.subject, record.data.kind)
            group = groups.setdefault(subject, [])
            group.append(record)
            if len(group) == RECORDS_PER_MESSAGE:
                self._parcels.append(_Parcel(subject, group))
                groups[subject] = []
        self._parcels.extend(_Parcel(subject, group) for subject, group in groups.items() if group)
        self._parcelled += taken

    async def _publish_batch(self) -> None:
        """Publish the parcels pipelined: each goes out with its own reply subject on one shared ack
        inbox, and the round waits once for JetStream's acknowledgements."""
        if not self._parcels:
            self._form_parcels()
        parcels = list(self._parcels)[:MESSAGES_PER_ROUND]
        assert self.stream is not None
        inbox = await self._ack_inbox()
        token = next(self._batch_counter)
        replies = {f"{inbox}.{token}.{index}": parcel for index, parcel in enumerate(parcels)}
        acks = _BatchAcks(expected=len(replies))
        self._ack_waiters[token] = acks
        started = time.perf_counter()
        try:
            for reply, parcel in replies.items():
                headers = {"Nats-Msg-Id": parcel.message_id, "Nats-Expected-Stream": self.stream.name}
                if len(parcel.records) == 1:
                    headers[CORRELATION_HEADER] = parcel.records[0].data.correlation_id or ""
                await self.bus.nc.publish(parcel.subject, parcel.payload(), reply=reply, headers=headers)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(acks.all_answered.wait(), ACK_TIMEOUT)
        finally:
            del self._ack_waiters[token]
        metrics.AUDIT_PUBLISH_SECONDS.observe(time.perf_counter() - started)
        delivered = [replies[reply] for reply in acks.acknowledged]
        if delivered:
            done = set(map(id, delivered))
            # By identity, among the parcels still held: a full buffer may have dropped (and counted)
            # the oldest ones meanwhile.
            count = sum(len(parcel.records) for parcel in self._parcels if id(parcel) in done)
            self._parcels = deque(parcel for parcel in self._parcels if id(parcel) not in done)
            self._parcelled -= count
            self.published += count
            metrics.AUDIT_PUBLISHED.inc(count)
            metrics.AUDIT_BUFFERED.set(self.pending)
        if len(delivered) < len(parcels):
            if acks.no_stream:
                self._stream_ready = False  # no stream answers the subject: create it again
            raise RuntimeError(
                f"JetStream acknowledged {len(delivered)} of {len(parcels)} audit messages"
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
        if status == NO_RESPONDERS:  # no stream takes the subject
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
    """Stored records matching ``subject_filter`` from position ``start`` on (up to stream sequence
    ``end``, inclusive, when given), oldest first. A position is ``sequence * POSITION_BASE + index``
    of the record in its message (a message may hold a parcel of records); 1 is the beginning.

    Returns ``(position, record)`` pairs and the position to continue from (None when none are left).
    """
    found: list[tuple[int, AuditRecord]] = []
    sequence, skip = divmod(start, POSITION_BASE) if start >= POSITION_BASE else (1, 0)
    while True:
        try:
            message = await bus.js.get_msg(stream_name, seq=sequence, subject=subject_filter, next=True)
        except nats.js.errors.NotFoundError:
            return found, None
        if message.seq is None or message.data is None or (end is not None and message.seq > end):
            return found, None
        if message.seq != sequence:
            skip = 0  # the start position's message is not among the filtered ones: start at the next
        try:
            records = decode_records(message.data)
        except msgspec.DecodeError:
            records = []
        for index in range(skip, len(records)):
            position = message.seq * POSITION_BASE + index
            if len(found) == limit:
                return found, position
            found.append((position, records[index]))
        sequence, skip = message.seq + 1, 0
