"""Server-Sent Events framing and the session event store.

Every event written on a resumable stream is first stored in the JetStream stream ``MCP_EVENTS``
(subject ``mcp.events.<sessionKey>.<streamId>``) so a client may resume with ``Last-Event-ID`` on
**any** edge replica. An event id is ``<streamId>-<stream sequence>``: the JetStream sequence makes
it unique within the session (indeed globally) and tells a replaying replica where to start. An event
relayed from a worker also carries the worker event's ``seq`` (header ``Mcp-Worker-Seq``), so a replica
adopting the call after its holder died knows which worker events the client can already get.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js.api import ConsumerConfig, DeliverPolicy

from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import MCP_EVENTS, mcp_events_subject

FINAL_HEADER = "Mcp-Final"
WORKER_SEQ_HEADER = "Mcp-Worker-Seq"
_EVENT_ID = re.compile(r"^([A-Za-z0-9]{1,32})-(\d{1,19})$")
GET_STREAM_ID = "get"


def frame(data: bytes, event_id: str | None = None, retry_ms: int | None = None) -> bytes:
    out = b""
    if event_id is not None:
        out += b"id: " + event_id.encode() + b"\n"
    if retry_ms is not None:
        out += b"retry: " + str(retry_ms).encode() + b"\n"
    return out + b"event: message\ndata: " + data + b"\n\n"


KEEPALIVE = b": keepalive\n\n"


def priming_frame(event_id: str, retry_ms: int) -> bytes:
    """An event with an id, a reconnection delay and empty data (clients skip it as a message)."""
    return b"id: " + event_id.encode() + b"\nretry: " + str(retry_ms).encode() + b"\ndata: \n\n"


def session_key(session_id: str) -> str:
    """A subject-safe key for a session id (which may hold any visible ASCII)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]


def parse_event_id(event_id: str) -> tuple[str, int] | None:
    found = _EVENT_ID.match(event_id.strip())
    return (found.group(1), int(found.group(2))) if found else None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    event_id: str
    data: bytes
    final: bool


@dataclass(frozen=True, slots=True)
class LastEvent:
    """What the last stored event of a stream says: whether it ended the stream, and the worker seq
    it carried (0 when none)."""

    final: bool
    worker_seq: int


class EventStore:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def ensure(self) -> None:
        await self._bus.ensure_stream(MCP_EVENTS)

    async def append(
        self, session_id: str, stream_id: str, data: bytes, *, final: bool = False, worker_seq: int = 0
    ) -> str:
        """Store one event and return its id."""
        headers: dict[str, str] | None = None
        if final or worker_seq:
            headers = {FINAL_HEADER: "1"} if final else {}
            if worker_seq:
                headers[WORKER_SEQ_HEADER] = str(worker_seq)
        ack = await self._bus.js.publish(
            mcp_events_subject(session_key(session_id), stream_id),
            data,
            stream=MCP_EVENTS.name,
            headers=headers,
        )
        return f"{stream_id}-{ack.seq}"

    async def last(self, session_id: str, stream_id: str) -> LastEvent | None:
        """The last stored event of one stream; None when nothing is stored."""
        subject = mcp_events_subject(session_key(session_id), stream_id)
        try:
            msg = await self._bus.js.get_last_msg(MCP_EVENTS.name, subject)
        except nats.js.errors.NotFoundError:
            return None
        headers = msg.headers or {}
        seq = headers.get(WORKER_SEQ_HEADER, "0")
        return LastEvent(headers.get(FINAL_HEADER) == "1", int(seq) if seq.isdigit() else 0)

    async def follow(
        self, session_id: str, stream_id: str, after_seq: int | None, *, idle_timeout: float
    ) -> AsyncIterator[StoredEvent | None]:
        """Events of one stream after ``after_seq`` (all new ones when None), then live ones as they
        are stored. Yields None once subscribed, and after ``idle_timeout`` seconds without an event
        (for keep-alives)."""
        subject = mcp_events_subject(session_key(session_id), stream_id)
        if after_seq is None:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.NEW)
        else:
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after_seq + 1
            )
        subscription = await self._bus.js.subscribe(
            subject, stream=MCP_EVENTS.name, ordered_consumer=True, config=config
        )
        try:
            yield None
            while True:
                try:
                    msg = await subscription.next_msg(timeout=idle_timeout)
                except nats.errors.TimeoutError:
                    yield None
                    continue
                seq = msg.metadata.sequence.stream
                final = (msg.headers or {}).get(FINAL_HEADER) == "1"
                yield StoredEvent(f"{stream_id}-{seq}", msg.data, final)
        finally:
            with contextlib.suppress(nats.errors.Error, nats.js.errors.Error):
                await subscription.unsubscribe()
