"""In-process fan-out of live session events to the listening streams open on this replica.

One core NATS subscription per replica (``mcp.live.>``) brings every live event; a dict keyed by
session finds its listeners. A listener is a small slotted mailbox (``transport/mailbox.py``): tens of
thousands of idle listeners cost a few hundred bytes each here and nothing at all in NATS (see
docs/scale.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import structlog
from nats.aio.msg import Msg

from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import MCP_LIVE_WILDCARD, MCP_SUBSCRIPTIONS_WILDCARD
from skillrelay_edge.calls.sse import FINAL_HEADER, SEQ_HEADER, StoredEvent, session_key
from skillrelay_edge.transport.mailbox import Mailbox

_log = structlog.get_logger("skillrelay.edge.fanout")
_uris = msgspec.json.Decoder(list[str])


class OpenStream(Mailbox[StoredEvent]):
    """One listening stream open on this replica: a session's GET stream or a resumed request stream."""

    __slots__ = (
        "floor",
        "integration_id",
        "key",
        "principal",
        "session_id",
        "skillset_id",
        "stream_id",
        "subscriptions",
    )

    def __init__(
        self,
        session_id: str,
        integration_id: str,
        skillset_id: str,
        principal: str,
        subscriptions: Iterable[str] = (),
        stream_id: str = "get",
    ) -> None:
        super().__init__()
        self.session_id = session_id
        self.key = session_key(session_id)
        self.stream_id = stream_id
        self.integration_id = integration_id
        self.skillset_id = skillset_id
        self.principal = principal
        # Resource URIs this session subscribed to; kept current by mcp.subscriptions.<key> messages.
        self.subscriptions: frozenset[str] = frozenset(subscriptions)
        # The last sequence its client has (replayed on resumption): live events up to it are skipped.
        self.floor = 0

    def offer(self, item: StoredEvent, wire: bytes) -> None:
        if not item.seq or item.seq > self.floor:
            super().offer(item, wire)


class Fanout:
    """Listening streams on this replica, by session, fed from one core NATS subscription."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._by_key: dict[str, list[OpenStream]] = {}
        self._subscriptions: list[Any] = []

    async def start(self) -> None:
        nc = self._bus.nc
        # Large pending limits: one subscription carries every listener's events on this replica.
        msgs, size = 1_000_000, 512 * 1024 * 1024
        self._subscriptions = [
            await nc.subscribe(
                MCP_LIVE_WILDCARD, cb=self._on_live, pending_msgs_limit=msgs, pending_bytes_limit=size
            ),
            await nc.subscribe(
                MCP_SUBSCRIPTIONS_WILDCARD,
                cb=self._on_subscriptions,
                pending_msgs_limit=msgs,
                pending_bytes_limit=size,
            ),
        ]

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._subscriptions = []

    def __bool__(self) -> bool:
        return bool(self._by_key)

    def __len__(self) -> int:
        return sum(len(streams) for streams in self._by_key.values())

    def add(self, stream: OpenStream) -> None:
        self._by_key.setdefault(stream.key, []).append(stream)

    def remove(self, stream: OpenStream) -> None:
        streams = self._by_key.get(stream.key)
        if streams is None:
            return
        with contextlib.suppress(ValueError):
            streams.remove(stream)
        if not streams:
            del self._by_key[stream.key]

    def of_session(self, session_id: str) -> list[OpenStream]:
        return list(self._by_key.get(session_key(session_id), ()))

    def get_streams(self) -> Iterator[OpenStream]:
        """One GET stream per session (a message goes on only one of a session's streams)."""
        for streams in self._by_key.values():
            for stream in streams:
                if stream.stream_id == "get":
                    yield stream
                    break

    def all_streams(self) -> Iterator[OpenStream]:
        for streams in self._by_key.values():
            yield from streams

    async def _on_live(self, msg: Msg) -> None:
        parts = msg.subject.split(".")
        if len(parts) != 4:
            return
        streams = self._by_key.get(parts[2])
        if not streams:
            return
        stream_id = parts[3]
        headers = msg.headers or {}
        seq_text = headers.get(SEQ_HEADER, "0")
        seq = int(seq_text) if seq_text.isdigit() else 0
        event = StoredEvent(f"{stream_id}-{seq}", msg.data, headers.get(FINAL_HEADER) == "1", seq)
        for stream in streams:
            if stream.stream_id == stream_id:
                stream.push(event)
                if stream_id == "get":
                    break  # one of a session's GET streams gets each message

    async def _on_subscriptions(self, msg: Msg) -> None:
        streams = self._by_key.get(msg.subject.rsplit(".", 1)[-1])
        if not streams:
            return
        try:
            uris = frozenset(_uris.decode(msg.data))
        except msgspec.DecodeError:
            _log.warning("fanout.subscriptions.unreadable")
            return
        for stream in streams:
            stream.subscriptions = uris
