"""Server-initiated notifications to open sessions: ``*/list_changed`` when the skillset changes and
``notifications/resources/updated`` to subscribers. They travel on each session's GET stream: stored
once per integration in the event store (so whichever replica the client reconnects to can replay
them) and delivered in process to the listening streams of this replica (see fanout.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import structlog
from nats.aio.msg import Msg

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.sessions import SessionEvent
from skillrelay_common.subjects import SESSIONS_EVENTS, mcp_subscriptions_subject
from skillrelay_edge.calls.sse import GET_STREAM_ID, KEEPALIVE, EventStore, StoredEvent, frame, session_key
from skillrelay_edge.integrations.snapshots import Change
from skillrelay_edge.sessions.fanout import Fanout, OpenStream
from skillrelay_edge.transport import jsonrpc

__all__ = ["ALL_LIST_CHANGED", "KEEPALIVE_SECONDS", "LIST_CHANGED", "OpenStream", "SessionStreams"]

_log = structlog.get_logger("skillrelay.edge.notifications")
_session_event = msgspec.json.Decoder(SessionEvent)
KEEPALIVE_SECONDS = 15.0

LIST_CHANGED = {
    "ability": ("notifications/tools/list_changed",),
    "resource": ("notifications/resources/list_changed",),
    "prompt": ("notifications/prompts/list_changed",),
    "skillset": (),
}
ALL_LIST_CHANGED = (
    "notifications/tools/list_changed",
    "notifications/resources/list_changed",
    "notifications/prompts/list_changed",
)


class SessionStreams:
    """Listening streams open on this replica."""

    def __init__(self, bus: Bus, store: EventStore) -> None:
        self._bus = bus
        self._store = store
        self.fanout = Fanout(bus)
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Any = None

    async def start(self) -> None:
        await self.fanout.start()
        self._subscription = await self._bus.nc.subscribe(
            SESSIONS_EVENTS.subjects[0], cb=self._on_session_event
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
        await self.fanout.stop()
        self.end_all()
        for task in list(self._tasks):
            task.cancel()

    @property
    def open_count(self) -> int:
        return sum(1 for _ in self.fanout.get_streams())

    def end_all(self) -> None:
        """The server is stopping: end every stream now (clients resume elsewhere)."""
        for stream in self.fanout.all_streams():
            stream.end()

    def end_session(self, session_id: str) -> None:
        for stream in self.fanout.of_session(session_id):
            if stream.stream_id == GET_STREAM_ID:
                stream.end()

    async def publish_subscriptions(self, session_id: str, uris: list[str]) -> None:
        """A session's resource subscriptions changed: tell the replica holding its GET stream."""
        await self._bus.nc.publish(
            mcp_subscriptions_subject(session_key(session_id)), msgspec.json.encode(uris)
        )

    async def follow(self, stream: OpenStream, after_seq: int | None) -> AsyncIterator[bytes]:
        """SSE frames of a session stream: the GET stream or, when resuming, a request stream until its
        final event. Listens before replaying, so nothing stored meanwhile is missed; a failure to
        reach the event store raises here (the caller answers 503), not mid-stream."""
        self.fanout.add(stream)
        replayed: list[StoredEvent] = []
        if after_seq is not None:
            integration = stream.integration_id if stream.stream_id == GET_STREAM_ID else None
            try:
                replayed = await self._store.replay(
                    stream.session_id, stream.stream_id, after_seq, integration_id=integration
                )
            except BaseException:
                self.fanout.remove(stream)
                raise
        return self._frames(stream, replayed, after_seq or 0)

    async def _frames(
        self, stream: OpenStream, replayed: list[StoredEvent], floor: int
    ) -> AsyncIterator[bytes]:
        is_get = stream.stream_id == GET_STREAM_ID
        try:
            yield KEEPALIVE  # flush headers at once so the client sees the stream is open
            for event in replayed:
                floor = max(floor, event.seq)
                if event.uri is not None and event.uri not in stream.subscriptions:
                    continue  # a resources/updated for the subscribers of another resource
                if event.data:  # a final event without data: the call was cancelled, no response
                    yield frame(event.data, event.event_id or None)
                if event.final and not is_get:
                    return
            stream.floor = floor  # for what a fan-out writes to it directly (``OpenStream.offer``)
            while True:
                live = await stream.next(KEEPALIVE_SECONDS)
                if stream.ended:
                    return
                if live is None:
                    yield KEEPALIVE
                    continue
                if live.seq and live.seq <= floor:
                    continue  # replayed already
                if live.data:
                    yield frame(live.data, live.event_id or None)
                if live.final and not is_get:
                    return
        finally:
            self.fanout.remove(stream)

    # -- reacting to changes ---------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        if not self.fanout:
            return
        task = asyncio.get_running_loop().create_task(self._notify(change))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _by_integration(self, change: Change) -> dict[str, list[OpenStream]]:
        found: dict[str, list[OpenStream]] = defaultdict(list)
        for stream in self.fanout.get_streams():
            if change.entity == "integration":
                if stream.integration_id == change.integration_id:
                    found[stream.integration_id].append(stream)
            elif stream.skillset_id == change.skillset_id:
                found[stream.integration_id].append(stream)
        return found

    async def _notify(self, change: Change) -> None:
        for integration_id, streams in self._by_integration(change).items():
            if change.entity == "integration":
                if change.change == "deleted":
                    for stream in streams:
                        stream.end()
                    continue
                if "skillsetId" in change.fields and change.skillset_id:
                    for stream in streams:
                        stream.skillset_id = change.skillset_id
                    await self._send(change, integration_id, streams, ALL_LIST_CHANGED)
                continue
            methods: tuple[str, ...] = (
                ALL_LIST_CHANGED
                if change.entity == "skillset" and change.change == "deleted"
                else LIST_CHANGED.get(change.entity, ())
            )
            await self._send(change, integration_id, streams, methods)
            if change.entity == "resource" and change.uri and change.change == "updated":
                # Stored even with no subscriber listening here: one may resume on any replica.
                subscribers = [stream for stream in streams if change.uri in stream.subscriptions]
                await self._send(
                    change, integration_id, subscribers, ("notifications/resources/updated",), change.uri
                )

    async def _send(
        self,
        change: Change,
        integration_id: str,
        streams: list[OpenStream],
        methods: tuple[str, ...],
        uri: str | None = None,
    ) -> None:
        """Store each notification once for the integration, then hand it to this replica's streams."""
        for method in methods:
            params = {"uri": uri} if uri is not None else {}
            data = jsonrpc.encode(jsonrpc.notification(method, params))
            try:
                seq = await self._store.broadcast(
                    integration_id, data, dedup_key=f"{change.key}:{integration_id}:{method}", uri=uri
                )
            except Exception as exc:
                # Not stored (the event store is down, or its answer came too late for a replica
                # busy fanning out to tens of thousands): still sent to the streams open here, with
                # no event id, so a client that resumes later cannot ask for it again.
                _log.warning("notifications.store.failed", error=type(exc).__name__)
                seq = 0
            event = StoredEvent(f"{GET_STREAM_ID}-{seq}" if seq else "", data, False, seq, uri)
            wire = frame(data, event.event_id or None)  # the same frame for every stream: made once
            for stream in streams:
                stream.offer(event, wire)

    async def _on_session_event(self, msg: Msg) -> None:
        if not msg.subject.endswith((".closed", ".expired")):
            return
        with contextlib.suppress(msgspec.DecodeError):
            self.end_session(_session_event.decode(msg.data).session_id)
