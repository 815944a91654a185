"""The outbound HTTP client: SSRF-guarded (``TargetCache``), pinned to the checked address, kept-alive
connections pooled per upstream, no redirects, bounded time and answer size.

A caller describes a request once (:class:`RequestShape`: method, URL, headers, encoded and checked
when built) and sends it many times; a call then costs the request bytes, a future and a timer.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import structlog

from skillrelay_common.outbound.http1 import ConnectionLost, Http1Connection, OutboundError, Response
from skillrelay_common.outbound.targets import TargetCache
from skillrelay_common.ssrf import PinnedTarget, TargetRefused, parse_target

# Set by the client (pinned target, framing): a caller's headers may not override them.
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive"}
)
_log = structlog.get_logger("skillrelay.outbound")
_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\0")
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class RequestShape:
    """Everything about a request that does not change from call to call, encoded once."""

    __slots__ = ("_head_end", "_head_start", "method", "path", "url")

    def __init__(self, method: str, url: str, headers: Mapping[str, str]) -> None:
        if method not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
            raise TargetRefused(f"method {method!r} may not be used")
        parsed = parse_target(url)  # raises TargetRefused for a URL that may never be called
        if any(char in parsed.path for char in " \t\r\n\0"):
            raise TargetRefused("the URL's path holds whitespace")
        self.method = method
        self.url = url
        self.path = parsed.path
        host = PinnedTarget(parsed.scheme, parsed.host, "", parsed.port, parsed.path).host_header
        lines = [f"Host: {host}"]
        for name, value in headers.items():
            if name.lower() in RESERVED_HEADERS:
                continue
            if not name or not set(name) <= _TOKEN_CHARS:
                raise TargetRefused(f"header name {name!r} is not valid")
            if any(char in value for char in _FORBIDDEN_IN_HEADERS):
                raise TargetRefused(f"header {name!r} holds a line break")
            lines.append(f"{name}: {value}")
        self._head_start = f"{method} ".encode()
        self._head_end = (" HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n").encode("latin-1", "replace")

    def encode(self, body: bytes | None, query: str | None) -> bytes:
        path = self.path.encode()
        if query:
            path += (b"&" if b"?" in path else b"?") + query.encode()
        if body is None:
            return self._head_start + path + self._head_end + b"\r\n"
        length = b"Content-Length: %d\r\n\r\n" % len(body)
        return self._head_start + path + self._head_end + length + body


def encode_query(arguments: Mapping[str, str]) -> str:
    return "&".join(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in arguments.items())


class _Pool:
    """The connections to one upstream (scheme, address, port, TLS name)."""

    __slots__ = ("idle", "open", "waiters")

    def __init__(self) -> None:
        self.idle: deque[Http1Connection] = deque()
        self.open = 0
        self.waiters: deque[asyncio.Future[Http1Connection | None]] = deque()


class OutboundClient:
    def __init__(
        self,
        targets: TargetCache,
        *,
        max_connections_per_upstream: int = 100,
        keepalive_seconds: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.targets = targets
        self._max_connections = max_connections_per_upstream
        self._keepalive = keepalive_seconds
        self._ssl = ssl_context
        self._pools: dict[tuple[str, str, int, str], _Pool] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def send(
        self,
        shape: RequestShape,
        *,
        body: bytes | None = None,
        query: str | None = None,
        timeout: float,
        max_body: int,
        stream: Callable[[bytes], None] | None = None,
    ) -> Response:
        """Send and wait for the whole answer. Raises ``TargetRefused`` (SSRF), ``TimeoutError`` or
        ``OutboundError``; every message is safe to show. ``stream`` takes an event-stream answer's
        body as it arrives (see ``Http1Connection.send``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        target = await self.targets.target(shape.url)
        request = shape.encode(body, query)
        key = (target.scheme, target.address, target.port, target.host)
        for _attempt in range(2):
            connection = await self._acquire(key, target, deadline)
            waiter = connection.send(request, max_body, stream)
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                response = await waiter
            except ConnectionLost as exc:
                self._release(key, connection)
                # A kept-alive connection the server closed meanwhile: send once more on a fresh one.
                if exc.answered_nothing and connection.requests > 1 and loop.time() < deadline:
                    continue
                raise
            except BaseException:
                connection.abandon()
                self._release(key, connection)
                raise
            finally:
                timer.cancel()
            self._release(key, connection)
            _log.debug("outbound.answer", method=shape.method, host=target.host, status=response.status)
            return response
        raise OutboundError("the server closed the connection")  # pragma: no cover - loop returns

    async def aclose(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for pool in self._pools.values():
            while pool.idle:
                pool.idle.popleft().close()
            while pool.waiters:
                pool.waiters.popleft().cancel()
        self._pools.clear()

    @property
    def open_connections(self) -> int:
        return sum(pool.open for pool in self._pools.values())

    async def _acquire(
        self, key: tuple[str, str, int, str], target: PinnedTarget, deadline: float
    ) -> Http1Connection:
        if self._closed:
            raise OutboundError("the client is closed")
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool()
        loop = asyncio.get_running_loop()
        now = loop.time()
        while pool.idle:
            connection = pool.idle.pop()  # the most recently used: the likeliest to be alive
            if connection.is_open and now - connection.idle_since < self._keepalive:
                return connection
            connection.close()
            pool.open -= 1
        if pool.open >= self._max_connections:
            waiter: asyncio.Future[Http1Connection | None] = loop.create_future()
            pool.waiters.append(waiter)
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                handed = await waiter
            except BaseException:
                # Cancelled or timed out just after a connection or a slot was handed over: give it back.
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    given = waiter.result()
                    if given is None:
                        self._free_slot(key, pool)
                    else:
                        self._release(key, given)
                raise
            finally:
                timer.cancel()
            if handed is not None:
                return handed
            # A connection closed: its slot is ours (``open`` already counts it).
        else:
            pool.open += 1
        try:
            return await asyncio.wait_for(self._connect(loop, target), max(0.0, deadline - loop.time()))
        except BaseException:
            self._free_slot(key, pool)
            raise

    async def _connect(self, loop: asyncio.AbstractEventLoop, target: PinnedTarget) -> Http1Connection:
        tls = target.scheme == "https"
        context = (self._ssl or _default_context()) if tls else None
        try:
            _, connection = await loop.create_connection(
                lambda: Http1Connection(loop),
                target.address,
                target.port,
                ssl=context,
                server_hostname=target.host if tls else None,
            )
        except ssl.SSLError:
            raise OutboundError("the TLS handshake failed") from None
        except OSError:
            raise OutboundError("cannot connect") from None
        self._schedule_sweep(loop)
        return connection

    def _release(self, key: tuple[str, str, int, str], connection: Http1Connection) -> None:
        pool = self._pools.get(key)
        if pool is None:  # the client was closed meanwhile
            connection.close()
            return
        if connection.reusable and connection.is_open and not self._closed:
            while pool.waiters:
                waiter = pool.waiters.popleft()
                if not waiter.done():
                    waiter.set_result(connection)
                    return
            connection.idle_since = asyncio.get_running_loop().time()
            pool.idle.append(connection)
            return
        connection.close()
        self._free_slot(key, pool)

    def _free_slot(self, key: tuple[str, str, int, str], pool: _Pool) -> None:
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the waiter opens a connection in this slot
                return
        pool.open -= 1
        if pool.open == 0 and not pool.idle and self._pools.get(key) is pool:
            del self._pools[key]

    def _schedule_sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._sweeper is None and not self._closed:
            self._sweeper = loop.call_later(self._keepalive, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle past the keep-alive time (one timer per client, not per call)."""
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        for key, pool in list(self._pools.items()):
            while pool.idle and (
                not pool.idle[0].is_open or now - pool.idle[0].idle_since >= self._keepalive
            ):
                pool.idle.popleft().close()
                self._free_slot(key, pool)
        if self._pools:
            self._schedule_sweep(asyncio.get_running_loop())


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


_context: ssl.SSLContext | None = None


def _default_context() -> ssl.SSLContext:
    global _context
    if _context is None:
        _context = ssl.create_default_context()
    return _context
