"""HTTP/1.1 over asyncio protocols: one kept-alive connection, one request at a time, parsed by
llhttp (``httptools``, the parser uvicorn serves with) straight from ``data_received``.

A request costs one ``transport.write`` and one future: no task, no stream reader, no per-chunk
coroutine. The body is bounded while it arrives (the connection is dropped past the limit, so a huge
answer is never buffered). A caller that passes ``stream`` gets a ``text/event-stream`` answer's body
chunk by chunk as it arrives (an upstream MCP server's SSE answer), not in the ``Response``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httptools


class OutboundError(Exception):
    """The request did not get a complete answer (message is safe to show)."""


class ConnectionLost(OutboundError):
    """The server closed the connection before answering. ``answered_nothing``: not one byte of an
    answer came back, so a request on a reused connection may be sent again on a fresh one."""

    def __init__(self, message: str, *, answered_nothing: bool) -> None:
        super().__init__(message)
        self.answered_nothing = answered_nothing


class BodyTooLarge(OutboundError):
    pass


class Response:
    """A complete answer. ``headers`` keep the wire's order; names are lower-cased bytes."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Http1Connection(asyncio.Protocol):
    """Call :meth:`send` once at a time; ``reusable`` says whether the connection may take another
    request after the answer (keep-alive, complete message, not closing)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._limit = 0
        self._headers_done = False
        self._received = False
        # Where an event-stream body goes (``send(stream=…)``), and whether this answer is one.
        self._stream: Callable[[bytes], None] | None = None
        self._streaming = False
        self.reusable = False
        self.requests = 0  # how many this connection has carried (a reused one may have gone stale)
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            self.close()  # bytes nobody asked for: the connection's framing can no longer be trusted
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(OutboundError("the server switched protocols"))
        except httptools.HttpParserError:
            self._fail(OutboundError("the server's answer is not valid HTTP/1.1"))

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._chunked_or_sized:
            # An answer without Content-Length or chunking ends when the server closes (RFC 9112 6.3).
            self._complete()
            return
        self._waiter = None
        waiter.set_exception(
            ConnectionLost("the server closed the connection", answered_nothing=not self._received)
        )

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        if self._stream is not None:
            for name, value in self._headers:
                if name == b"content-type" and value.lower().startswith(b"text/event-stream"):
                    self._streaming = True

    def on_body(self, body: bytes) -> None:
        if self._waiter is None:
            return  # failed or abandoned: nothing is kept
        self._size += len(body)
        if self._size > self._limit:
            self._fail(BodyTooLarge(f"the answer is larger than {self._limit} bytes"))
            return
        if self._streaming and self._stream is not None:
            self._stream(body)
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._complete()

    # requests
    def send(
        self, request: bytes, limit: int, stream: Callable[[bytes], None] | None = None
    ) -> asyncio.Future[Response]:
        """Write ``request`` (a whole HTTP/1.1 message); the future holds the answer. With ``stream``,
        an event-stream body is handed to it as it arrives instead (the ``Response`` body is empty)."""
        assert self.transport is not None and self._waiter is None
        self.reusable = False
        self.requests += 1
        self._headers = []
        self._body = []
        self._size = 0
        self._limit = limit
        self._headers_done = False
        self._received = False
        self._stream = stream
        self._streaming = False
        waiter: asyncio.Future[Response] = self._loop.create_future()
        self._waiter = waiter
        self.transport.write(request)
        return waiter

    def abandon(self) -> None:
        """The caller gave up (timeout, cancellation): the answer may still arrive, so never reuse."""
        self._waiter = None
        self.close()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    @property
    def _chunked_or_sized(self) -> bool:
        for name, value in self._headers:
            if name == b"content-length" or (name == b"transfer-encoding" and b"chunked" in value.lower()):
                return True
        return False

    def _complete(self) -> None:
        waiter = self._waiter
        if waiter is None:
            return
        if 100 <= self._parser.get_status_code() < 200:
            self._headers = []  # an interim answer (103 Early Hints, …): the real one follows
            self._headers_done = False
            self._streaming = False
            return
        self._waiter = None
        self._stream = None
        self.reusable = self._parser.should_keep_alive() and self.is_open
        if not self.reusable:
            self.close()
        if not waiter.done():
            body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
            waiter.set_result(Response(self._parser.get_status_code(), self._headers, body))

    def _fail(self, error: Exception) -> None:
        waiter = self._waiter
        self._waiter = None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
