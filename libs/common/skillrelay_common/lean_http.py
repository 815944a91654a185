"""uvicorn's httptools protocol with less kept per connection: a server holding tens of thousands of
idle connections (the edge's listening streams) pays each byte tens of thousands of times.

uvicorn gives every connection a ``deque`` for pipelined requests (about 700 bytes with its first
block) although HTTP/1.1 clients all but never pipeline; here it is made only when one does. The
protocol is otherwise uvicorn's own. See docs/scale.md for what a connection costs.

It also lets a fan-out write a listening stream's frame straight to its connection, without waking
the request's task: the protocol itself is the writer (``write_now``, ``abort``; no object per stream),
found through the request's scope (``stream_writer``; the protocol already refers to the scope and
its request cycle to the protocol, so this adds no new kind of reference cycle)."""

from __future__ import annotations

from collections import deque
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# The scope key under which a request's connection (this protocol) is found.
CONNECTION_KEY = "skillrelay.connection"


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
        self.scope[CONNECTION_KEY] = self  # type: ignore[literal-required]

    def write_now(self, data: bytes) -> bool:
        """Send ``data`` as the next body bytes of the chunked (streaming) response under way, exactly
        as uvicorn's ``send`` would, but only when that needs no waiting: the response has started
        and is not complete, the client is connected, no pipelined request waits behind it, and the
        connection is not paused by back-pressure. False, having sent nothing, otherwise (the caller
        then sends from the request's task, through ``send``)."""
        cycle = self.cycle
        if (
            cycle is None
            or self.pipeline
            or cycle.disconnected
            or cycle.response_complete
            or not cycle.response_started
            or cycle.chunked_encoding is not True
            or self.flow.write_paused
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(_last_chunk.of(data))
        return True

    def abort(self) -> None:
        """Drop the connection at once, discarding what it has not sent (a client that stopped
        reading); uvicorn then reports the disconnect to the request."""
        self.transport.abort()


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


def stream_writer(scope: Any) -> LeanHttpToolsProtocol | None:
    """The connection of ``scope``'s request, to write its streaming response from outside the
    request's task; None unless served by ``LeanHttpToolsProtocol`` (another server, or a test calling
    the app directly)."""
    connection = scope.get(CONNECTION_KEY)
    return connection if isinstance(connection, LeanHttpToolsProtocol) else None
