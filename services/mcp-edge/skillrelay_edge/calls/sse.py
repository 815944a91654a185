"""Server-Sent Events framing and the session event store.

Every event written on a resumable stream is first stored in the JetStream stream ``MCP_EVENTS``
(subject ``mcp.events.<sessionKey>.<streamId>``) so a client may resume with ``Last-Event-ID`` on
**any** edge replica. An event id is ``<streamId>-<stream sequence>``: the JetStream sequence makes
it unique within the session (indeed globally) and tells a replaying replica where to start. An event
relayed from a worker also carries the worker event's ``seq`` (header ``Mcp-Worker-Seq``), so a replica
adopting the call after its holder died knows which worker events the client can already get.

Live delivery costs no JetStream consumer (see docs/scale.md): once stored, an event is also published
on core NATS (``mcp.live.<sessionKey>.<streamId>``, its sequence in a header), which every replica
receives on one wildcard subscription and fans out in process. Notifications meant for every session
of an integration are stored once (``mcp.events.integration.<integrationKey>``) and delivered by each
replica to its own listeners. Resuming replays stored events by direct reads, then goes live.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import nats.js.errors

from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import (
    MCP_EVENTS,
    mcp_broadcast_subject,
    mcp_events_subject,
    mcp_live_subject,
)

FINAL_HEADER = "Mcp-Final"
WORKER_SEQ_HEADER = "Mcp-Worker-Seq"
SEQ_HEADER = "Mcp-Seq"  # on live copies: the event's MCP_EVENTS sequence
URI_HEADER = "Mcp-Uri"  # on a stored resources/updated broadcast: only its subscribers replay it
# How many stored events one resumption replays at most (per subject); older ones are skipped.
REPLAY_LIMIT = 1000
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


def integration_key(integration_id: str) -> str:
    return hashlib.sha256(integration_id.encode()).hexdigest()[:32]


def parse_event_id(event_id: str) -> tuple[str, int] | None:
    found = _EVENT_ID.match(event_id.strip())
    return (found.group(1), int(found.group(2))) if found else None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    event_id: str
    data: bytes
    final: bool
    seq: int = 0
    uri: str | None = None  # a broadcast resources/updated: for subscribers of this URI only


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
        """Store one event, publish its live copy, and return its id."""
        key = session_key(session_id)
        headers: dict[str, str] | None = None
        if final or worker_seq:
            headers = {FINAL_HEADER: "1"} if final else {}
            if worker_seq:
                headers[WORKER_SEQ_HEADER] = str(worker_seq)
        ack = await self._bus.js.publish(
            mcp_events_subject(key, stream_id), data, stream=MCP_EVENTS.name, headers=headers
        )
        live = {SEQ_HEADER: str(ack.seq)}
        if final:
            live[FINAL_HEADER] = "1"
        await self._bus.nc.publish(mcp_live_subject(key, stream_id), data, headers=live)
        return f"{stream_id}-{ack.seq}"

    async def broadcast(
        self, integration_id: str, data: bytes, *, dedup_key: str, uri: str | None = None
    ) -> int:
        """Store one notification for every GET stream of an integration and return its sequence.
        Every replica stores the same change under the same ``dedup_key``: JetStream keeps one copy and
        answers each replica with its sequence, so all of them give it the same event id."""
        headers = {"Nats-Msg-Id": dedup_key}
        if uri is not None:
            headers[URI_HEADER] = uri
        ack = await self._bus.js.publish(
            mcp_broadcast_subject(integration_key(integration_id)),
            data,
            stream=MCP_EVENTS.name,
            headers=headers,
        )
        return int(ack.seq)

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

    async def replay(
        self, session_id: str, stream_id: str, after_seq: int, *, integration_id: str | None = None
    ) -> list[StoredEvent]:
        """Stored events of one stream after ``after_seq``, in order; for a GET stream
        (``integration_id`` given) merged with its integration's broadcasts. Direct reads: no consumer."""
        subjects = [mcp_events_subject(session_key(session_id), stream_id)]
        if integration_id is not None:
            subjects.append(mcp_broadcast_subject(integration_key(integration_id)))
        events: list[StoredEvent] = []
        for subject in subjects:
            events.extend(await self._read(subject, stream_id, after_seq))
        events.sort(key=lambda event: event.seq)
        return events

    async def _read(self, subject: str, stream_id: str, after_seq: int) -> list[StoredEvent]:
        found: list[StoredEvent] = []
        seq = after_seq + 1
        while len(found) < REPLAY_LIMIT:
            try:
                msg = await self._bus.js.get_msg(MCP_EVENTS.name, seq, subject=subject, next=True)
            except nats.js.errors.NotFoundError:
                break
            headers = msg.headers or {}
            found.append(
                StoredEvent(
                    f"{stream_id}-{msg.seq}",
                    msg.data or b"",
                    headers.get(FINAL_HEADER) == "1",
                    msg.seq or 0,
                    headers.get(URI_HEADER),
                )
            )
            seq = (msg.seq or seq) + 1
        return found
