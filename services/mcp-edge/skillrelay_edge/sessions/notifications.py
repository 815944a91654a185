"""Server-initiated notifications to open sessions: ``*/list_changed`` when the skillset changes and
``notifications/resources/updated`` to subscribers. They travel on each session's GET stream, which
is served from the event store, so whichever replica the client reconnects to can resume it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog
from nats.aio.msg import Msg

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.sessions import SessionEvent, SessionInfo
from skillrelay_common.subjects import SESSIONS_EVENTS
from skillrelay_edge.calls.sse import GET_STREAM_ID, KEEPALIVE, EventStore, StoredEvent, frame
from skillrelay_edge.integrations.snapshots import Change
from skillrelay_edge.protocol.resources import SUBSCRIPTIONS_KEY
from skillrelay_edge.transport import jsonrpc

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

SessionLookup = Callable[[str, str, str], Awaitable[SessionInfo | None]]


@dataclass
class OpenStream:
    session_id: str
    integration_id: str
    skillset_id: str
    principal: str
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class SessionStreams:
    """GET streams open on this replica."""

    def __init__(self, bus: Bus, store: EventStore, lookup: SessionLookup) -> None:
        self._bus = bus
        self._store = store
        self._lookup = lookup
        self._open: dict[str, list[OpenStream]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Any = None

    async def start(self) -> None:
        self._subscription = await self._bus.nc.subscribe(
            SESSIONS_EVENTS.subjects[0], cb=self._on_session_event
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
        self.end_all()
        for task in list(self._tasks):
            task.cancel()

    @property
    def open_count(self) -> int:
        return sum(len(streams) for streams in self._open.values())

    def end_all(self) -> None:
        """The server is stopping: end every GET stream now (clients resume elsewhere)."""
        for streams in self._open.values():
            for stream in streams:
                stream.ended.set()

    def end_session(self, session_id: str) -> None:
        for stream in self._open.get(session_id, []):
            stream.ended.set()

    async def follow(self, stream: OpenStream, stream_id: str, after_seq: int | None) -> AsyncIterator[bytes]:
        """SSE frames of a session stream: the GET stream (registered for notifications while open)
        or, when resuming, a request stream until its final event. Subscribes before returning, so a
        failure to reach the event store raises here (the caller answers 503), not mid-stream."""
        events = self._store.follow(stream.session_id, stream_id, after_seq, idle_timeout=KEEPALIVE_SECONDS)
        try:
            await anext(events)  # subscribed: nothing stored from now on is missed
        except BaseException:
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]
            raise
        return self._frames(stream, stream_id, events)

    async def _frames(
        self, stream: OpenStream, stream_id: str, events: AsyncIterator[StoredEvent | None]
    ) -> AsyncIterator[bytes]:
        is_get = stream_id == GET_STREAM_ID
        if is_get:
            self._open.setdefault(stream.session_id, []).append(stream)
        ended = asyncio.ensure_future(stream.ended.wait())
        try:
            yield KEEPALIVE  # flush headers at once so the client sees the stream is open
            while True:
                next_event = asyncio.ensure_future(anext(events))
                done, _ = await asyncio.wait({next_event, ended}, return_when=asyncio.FIRST_COMPLETED)
                if next_event not in done:
                    next_event.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await next_event
                    return
                event = next_event.result()
                if event is None:
                    yield KEEPALIVE
                    continue
                if event.data:  # a final event without data: the call was cancelled, no response
                    yield frame(event.data, event.event_id)
                if event.final and not is_get:
                    return
        except Exception as exc:  # the event store failed mid-stream: end it, the client resumes
            _log.warning("sse.follow.failed", error=type(exc).__name__)
        finally:
            ended.cancel()
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]
            if is_get:
                streams = self._open.get(stream.session_id, [])
                if stream in streams:
                    streams.remove(stream)
                if not streams:
                    self._open.pop(stream.session_id, None)

    # -- reacting to changes ---------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        if not self._open:
            return
        task = asyncio.get_running_loop().create_task(self._notify(change))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _streams_for(self, change: Change) -> list[OpenStream]:
        found: list[OpenStream] = []
        for streams in self._open.values():
            for stream in streams[:1]:  # one stream per session gets each message
                if change.entity == "integration":
                    if stream.integration_id == change.integration_id:
                        found.append(stream)
                elif stream.skillset_id == change.skillset_id:
                    found.append(stream)
        return found

    async def _notify(self, change: Change) -> None:
        for stream in self._streams_for(change):
            if change.entity == "integration":
                if change.change == "deleted":
                    stream.ended.set()
                    continue
                if "skillsetId" in change.fields and change.skillset_id:
                    stream.skillset_id = change.skillset_id
                    await self._send(stream, ALL_LIST_CHANGED)
                continue
            methods: tuple[str, ...] = (
                ALL_LIST_CHANGED
                if change.entity == "skillset" and change.change == "deleted"
                else LIST_CHANGED.get(change.entity, ())
            )
            await self._send(stream, methods)
            if change.entity == "resource" and change.uri and change.change == "updated":
                await self._send_updated(stream, change.uri)

    async def _send(
        self, stream: OpenStream, methods: tuple[str, ...], params: dict[str, Any] | None = None
    ) -> None:
        for method in methods:
            data = jsonrpc.encode(jsonrpc.notification(method, params or {}))
            try:
                await self._store.append(stream.session_id, GET_STREAM_ID, data)
            except Exception as exc:
                _log.warning("notifications.store.failed", error=type(exc).__name__)

    async def _send_updated(self, stream: OpenStream, uri: str) -> None:
        session = await self._lookup(stream.session_id, stream.integration_id, stream.principal)
        if session is None:
            return
        subscriptions = session.state.get(SUBSCRIPTIONS_KEY)
        if isinstance(subscriptions, list) and uri in subscriptions:
            await self._send(stream, ("notifications/resources/updated",), {"uri": uri})

    async def _on_session_event(self, msg: Msg) -> None:
        if not msg.subject.endswith((".closed", ".expired")):
            return
        with contextlib.suppress(msgspec.DecodeError):
            self.end_session(_session_event.decode(msg.data).session_id)
