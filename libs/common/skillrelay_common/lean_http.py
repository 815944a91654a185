"""uvicorn's httptools protocol with less kept per connection: a server holding tens of thousands of
idle connections (the edge's listening streams) pays each byte tens of thousands of times.

uvicorn gives every connection a ``deque`` for pipelined requests (about 700 bytes with its first
block) although HTTP/1.1 clients all but never pipeline; here it is made only when one does. The
protocol is otherwise uvicorn's own. See docs/scale.md for what a connection costs.

It also lets a fan-out write a listening stream's frame straight to its connection, without waking
the request's task (``stream_writer``): the request's cycle is kept in its scope (``CYCLE_KEY``; the
cycle already refers to the scope and the protocol, so this adds no new kind of reference cycle)."""

from __future__ import annotations

from collections import deque
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

# The scope key under which a request's uvicorn cycle is found (this protocol only).
CYCLE_KEY = "skillrelay.cycle"


class _RarePipeline:
    """The few operations uvicorn uses on its pipeline deque, with the deque made on first use."""

    __slots__ = ("_queue",)

    def __init__(self) -> None:
        self._queue: deque[Any] | None = None

    def appendleft(self, item: Any) -> None:
        if self._queue is None:
            self._queue = deque()
        self._queue.appendleft(item)

    def pop(self) -> Any:
        if not self._queue:
            raise IndexError("pop from an empty pipeline")
        item = self._queue.pop()
        if not self._queue:
            self._queue = None
        return item

    def __bool__(self) -> bool:
        return bool(self._queue)

    def __len__(self) -> int:
        return len(self._queue) if self._queue else 0


class LeanHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pipeline = _RarePipeline()  # type: ignore[assignment]

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:
            self.scope[CYCLE_KEY] = cycle  # type: ignore[literal-required]


class _LastChunk:
    """The HTTP chunk of the last frame framed: a fan-out sends the same frame to many streams."""

    __slots__ = ("chunk", "data")

    def __init__(self) -> None:
        self.data = b""
        self.chunk = b"0\r\n\r\n"

    def of(self, data: bytes) -> bytes:
        if data is not self.data:
            self.chunk = b"%x\r\n%b\r\n" % (len(data), data)
            self.data = data
        return self.chunk


_last_chunk = _LastChunk()


class StreamWriter:
    """Writes body bytes of a chunked streaming response (an SSE stream) from outside its request's
    task, exactly as uvicorn's ``send`` would, but only when that needs no waiting: the response has
    started and is not complete, the client is connected and its connection is not paused by
    back-pressure. The caller otherwise falls back to ``send`` from the request's task."""

    __slots__ = ("_cycle",)

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self._cycle = cycle

    def write_now(self, data: bytes) -> bool:
        cycle = self._cycle
        if (
            cycle.disconnected
            or cycle.response_complete
            or not cycle.response_started
            or cycle.chunked_encoding is not True
            or cycle.flow.write_paused
            or cycle.transport.is_closing()
        ):
            return False
        cycle.transport.write(_last_chunk.of(data))
        return True

    def abort(self) -> None:
        self._cycle.transport.abort()


def stream_writer(scope: Any) -> StreamWriter | None:
    """A writer for the streaming response of ``scope``'s request; None unless served by
    ``LeanHttpToolsProtocol`` (another server, or a test calling the app directly)."""
    cycle = scope.get(CYCLE_KEY)
    return StreamWriter(cycle) if isinstance(cycle, RequestResponseCycle) else None
