"""A lean NATS connection for the worker path: the edge's worker calls and the worker SDK.

nats-py spends, per message, a task switch to its flusher on the way out and two on the way in (its
read loop, then the subscription's own task awaiting the callback). On the worker path those were a
large part of the edge's and the worker's cost per call. Here a message costs none: ``publish``
appends to a buffer written once per event-loop iteration, and a subscription's callback is a plain
function called from ``data_received``.

Only what the worker protocol needs: PUB/HPUB, SUB/UNSUB with queue groups, MSG/HMSG with headers and
inline status (NATS "no responders"), PING/PONG keep-alive, reconnecting (with resubscription) to the
configured servers, user/password or token from the URL, TLS when the URL (``tls://``) or the server
asks for it. Request/reply and JetStream stay on nats-py (the services' ``Bus``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec
import nats.errors
import structlog

_log = structlog.get_logger("skillrelay.nats_lane")

_CRLF = b"\r\n"
_HEADER_LINE = b"NATS/1.0"
# Refuse to buffer more than this for a server that does not keep up (a lane never blocks, it says so).
_MAX_BUFFERED = 16 * 1024 * 1024
# While reconnecting, messages wait for the new connection up to this much (nats-py's default too).
_MAX_BUFFERED_WHILE_AWAY = 2 * 1024 * 1024
_info_decoder = msgspec.json.Decoder(dict[str, Any])
# The inline status nats-server sends to a message's reply subject when nobody was subscribed.
NO_RESPONDERS = "503"
# Whitespace would end a subject early and break the protocol line (a subject's tokens never hold any).
_UNSAFE = re.compile(r"\s")


class LaneUnavailable(nats.errors.Error):
    """Not connected (yet, or reconnecting), closed, or the server is not keeping up. A subclass of
    nats-py's error, so callers handle both connections alike."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def __str__(self) -> str:
        return f"nats: {self.reason}"


class LaneMessage:
    """A delivered message. ``status`` is a NATS inline status (``NO_RESPONDERS``, …)."""

    __slots__ = ("data", "headers", "reply", "status", "subject")

    def __init__(
        self, subject: str, reply: str, data: bytes, headers: dict[str, str] | None, status: str | None
    ) -> None:
        self.subject = subject
        self.reply = reply
        self.data = data
        self.headers = headers
        self.status = status


OnMessage = Callable[[LaneMessage], None]


@dataclass(frozen=True)
class _Server:
    host: str
    port: int
    tls: bool
    user: str | None = None
    password: str | None = None
    token: str | None = None


def parse_servers(url: str) -> list[_Server]:
    """``nats://[user:pass@|token@]host[:port]`` (or ``tls://``), comma-separated for a cluster."""
    servers = []
    for part in (piece.strip() for piece in url.split(",")):
        if not part:
            continue
        split = urlsplit(part if "://" in part else f"nats://{part}")
        if split.scheme not in ("nats", "tls"):
            raise ValueError(f"unsupported NATS URL scheme {split.scheme!r}")
        user = unquote(split.username) if split.username else None
        password = unquote(split.password) if split.password else None
        servers.append(
            _Server(
                host=split.hostname or "127.0.0.1",
                port=split.port or 4222,
                tls=split.scheme == "tls",
                user=user if password is not None else None,
                password=password,
                token=user if password is None else None,
            )
        )
    if not servers:
        raise ValueError("no NATS server URL given")
    return servers


def _publish_command(subject: str, reply: str, payload: bytes, headers: dict[str, str] | None) -> bytes:
    """``PUB`` (or ``HPUB`` with headers) as written to the server; refuses what would break the line."""
    if _UNSAFE.search(subject) or (reply and _UNSAFE.search(reply)):
        raise ValueError(f"not a NATS subject: {subject!r} / {reply!r}")
    target = f"{subject} {reply}" if reply else subject
    if not headers:
        return f"PUB {target} {len(payload)}\r\n".encode() + payload + _CRLF
    lines = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    if lines.count("\n") != len(headers) or lines.count("\r") != len(headers):
        raise ValueError("a NATS header may not contain a line break")
    block = _HEADER_LINE + _CRLF + lines.encode() + _CRLF
    size = len(block)
    return f"HPUB {target} {size} {size + len(payload)}\r\n".encode() + block + payload + _CRLF


def _parse_headers(block: bytes) -> tuple[dict[str, str] | None, str | None]:
    """``NATS/1.0[ <status>[ <description>]]\\r\\nKey: Value\\r\\n…\\r\\n`` → (headers, status)."""
    first, _, rest = block.partition(_CRLF)
    status = first[len(_HEADER_LINE) :].strip().split(b" ", 1)[0].decode() or None
    headers: dict[str, str] = {}
    for line in rest.split(_CRLF):
        key, colon, value = line.partition(b":")
        if colon:
            headers[key.strip().decode()] = value.strip().decode()
    return headers or None, status


class _Stage(Enum):
    INFO = "not connected; a new connection waits for the server's INFO"
    PONG = "waiting for the answer to CONNECT"
    READY = "connected"


@dataclass
class _Subscription:
    subject: str
    queue: str
    callback: OnMessage


@dataclass
class _Parser:
    """Splits the server's byte stream into protocol operations."""

    buffer: bytearray = field(default_factory=bytearray)
    # A MSG/HMSG header line whose payload has not fully arrived: (fields, header size, total size).
    waiting: tuple[list[bytes], int, int] | None = None


class NatsLane:
    """One lean connection. ``await NatsLane.connect(url, name)``; ``publish``/``subscribe`` are plain
    calls; ``close()`` sends what is buffered and waits for the server to have read it."""

    def __init__(
        self,
        servers: list[_Server],
        name: str,
        *,
        reconnect_wait: float = 0.5,
        ping_interval: float = 20.0,
        max_outstanding_pings: int = 2,
        connect_timeout: float = 5.0,
    ) -> None:
        self._servers = servers
        self.name = name
        self.reconnect_wait = reconnect_wait
        self.ping_interval = ping_interval
        self.max_outstanding_pings = max_outstanding_pings
        self.connect_timeout = connect_timeout
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._protocol: _LaneProtocol | None = None
        self._closing = False
        self._parser = _Parser()
        self._outbox: list[bytes] = []
        self._write_scheduled = False
        self._subs: dict[int, _Subscription] = {}
        self._sids = itertools.count(1)
        # One entry per PING sent, answered in order: a flush's future, or None for a keep-alive PING.
        self._pongs: list[asyncio.Future[None] | None] = []
        self._stage = _Stage.INFO
        self._outstanding_pings = 0
        self._handshake: asyncio.Future[dict[str, Any]] | None = None
        self._max_payload = 1024 * 1024
        self._keepalive: asyncio.Task[None] | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._next_server = 0
        self._buffered_while_away = 0
        self.reconnects = 0

    @classmethod
    async def connect(cls, url: str, name: str, **options: Any) -> NatsLane:
        lane = cls(parse_servers(url), name, **options)
        await lane._connect_any(attempts=1)
        lane._keepalive = asyncio.create_task(lane._keep_alive(), name=f"nats-lane-keepalive-{name}")
        return lane

    @property
    def max_payload(self) -> int:
        """The largest message the server takes (``max_payload`` of its INFO)."""
        return self._max_payload

    @property
    def is_connected(self) -> bool:
        return self._stage is _Stage.READY

    # -- publishing and subscribing ----------------------------------------------------------------

    def publish(
        self, subject: str, payload: bytes, reply: str = "", headers: dict[str, str] | None = None
    ) -> None:
        """Queue a message; it is written with everything else queued in this loop iteration. While
        reconnecting, it waits for the new connection (up to a limit, like nats-py)."""
        away = not self.is_connected
        if away:
            if self._closing or self._reconnecting is None:
                raise LaneUnavailable("closed" if self._closing else "not connected to NATS")
            if self._buffered_while_away + len(payload) > _MAX_BUFFERED_WHILE_AWAY:
                raise LaneUnavailable("not connected to NATS (reconnecting, buffer full)")
        elif self._transport is not None and self._transport.get_write_buffer_size() > _MAX_BUFFERED:
            raise LaneUnavailable("the NATS server is not keeping up")
        if len(payload) > self._max_payload:
            raise LaneUnavailable(f"message of {len(payload)} bytes exceeds the server's maximum")
        data = _publish_command(subject, reply, payload, headers)
        if away:  # counted only once it is sure to be queued
            self._buffered_while_away += len(payload)
        self._queue(data)

    def subscribe(self, subject: str, callback: OnMessage, queue: str = "") -> int:
        """Subscribe (again after every reconnect); returns the id ``unsubscribe`` takes. ``callback``
        runs in the protocol's data callback: it must not block, it may schedule work."""
        sid = next(self._sids)
        self._subs[sid] = _Subscription(subject, queue, callback)
        if self.is_connected:
            self._queue(self._sub_command(sid))
        return sid

    def unsubscribe(self, sid: int) -> None:
        if self._subs.pop(sid, None) is not None and self.is_connected:
            self._queue(f"UNSUB {sid}\r\n".encode())

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until the server has read everything sent so far (a PING answered)."""
        if not self.is_connected:
            raise LaneUnavailable("not connected to NATS")
        pong = self._ping()
        try:
            async with asyncio.timeout(timeout):
                await pong
        except TimeoutError:
            raise nats.errors.FlushTimeoutError from None

    async def close(self, *, flush: bool = True) -> None:
        """Stop reconnecting, send what is queued, wait (briefly) for the server to have it, close.
        ``flush=False`` drops what is queued and cuts the connection (as a killed process would)."""
        if self._closing:
            return
        if flush and self.is_connected:
            with contextlib.suppress(nats.errors.Error):
                await self.flush(timeout=2.0)
        self._closing = True
        self._stage = _Stage.INFO
        self._outbox.clear()
        for task in (self._keepalive, self._reconnecting):
            if task is not None:
                task.cancel()
        if self._transport is not None:
            if flush:
                self._transport.close()
            else:
                self._transport.abort()
        self._fail_pongs()

    # -- writing -----------------------------------------------------------------------------------

    def _queue(self, data: bytes) -> None:
        self._outbox.append(data)
        self._schedule_write()

    def _schedule_write(self) -> None:
        if not self._write_scheduled:
            self._write_scheduled = True
            self._loop.call_soon(self._write_out)

    def _write_out(self) -> None:
        self._write_scheduled = False
        transport = self._transport
        if not self._outbox or transport is None or transport.is_closing():
            return  # away: what is queued waits for the next connection
        data = b"".join(self._outbox) if len(self._outbox) > 1 else self._outbox[0]
        self._outbox.clear()
        transport.write(data)

    def _sub_command(self, sid: int) -> bytes:
        sub = self._subs[sid]
        queue = f" {sub.queue}" if sub.queue else ""
        return f"SUB {sub.subject}{queue} {sid}\r\n".encode()

    def _ping(self) -> asyncio.Future[None]:
        pong: asyncio.Future[None] = self._loop.create_future()
        self._pongs.append(pong)
        self._queue(b"PING\r\n")
        return pong

    # -- connecting --------------------------------------------------------------------------------

    async def _connect_any(self, attempts: int) -> None:
        """Try each configured server in turn, ``attempts`` rounds (0: until one answers)."""
        # The last few failures, for the message: reconnecting may go on for hours.
        errors: deque[str] = deque(maxlen=3)
        for attempt in itertools.count():
            if attempts and attempt >= attempts * len(self._servers):
                break
            server = self._servers[self._next_server % len(self._servers)]
            self._next_server += 1
            try:
                await self._connect_to(server)
                return
            except (OSError, TimeoutError, LaneUnavailable, ssl.SSLError) as exc:
                errors.append(f"{server.host}:{server.port}: {exc or type(exc).__name__}")
                if self._closing:
                    break
                if not attempts or attempt + 1 < attempts * len(self._servers):
                    await asyncio.sleep(self.reconnect_wait if attempt + 1 >= len(self._servers) else 0)
        raise LaneUnavailable("cannot connect to NATS (" + "; ".join(errors) + ")")

    async def _connect_to(self, server: _Server) -> None:
        """INFO from the server, TLS if wanted, then CONNECT + PING: a PONG means we are in."""
        self._parser = _Parser()
        self._handshake = self._loop.create_future()
        self._stage = _Stage.INFO
        async with asyncio.timeout(self.connect_timeout):
            transport, protocol = await self._loop.create_connection(
                lambda: _LaneProtocol(self), server.host, server.port
            )
            try:
                info = await self._handshake
                if server.tls or info.get("tls_required"):
                    context = ssl.create_default_context()
                    upgraded = await self._loop.start_tls(
                        transport, protocol, context, server_hostname=server.host
                    )
                    if upgraded is None:
                        raise LaneUnavailable("TLS upgrade failed")
                    transport = upgraded
                self._handshake = self._loop.create_future()
                self._stage = _Stage.PONG
                transport.write(self._connect_command(server, info) + b"PING\r\n")
                await self._handshake
            except BaseException:
                self._stage = _Stage.INFO
                transport.abort()
                raise
        self._transport = transport
        self._protocol = protocol
        self._stage = _Stage.READY
        self._max_payload = int(info.get("max_payload", self._max_payload))
        self._outstanding_pings = 0
        # Subscriptions first (made before, or while away), then what was published while away.
        waiting, self._outbox = self._outbox, [self._sub_command(sid) for sid in self._subs]
        self._outbox += waiting
        self._buffered_while_away = 0
        if self._outbox:
            self._schedule_write()

    def _connect_command(self, server: _Server, info: dict[str, Any]) -> bytes:
        options: dict[str, Any] = {
            "verbose": False,
            "pedantic": False,
            "headers": True,
            "no_responders": True,
            "protocol": 1,
            "lang": "python-skillrelay-lane",
            "version": "1",
            "name": self.name,
        }
        if server.token:
            options["auth_token"] = server.token
        elif server.user:
            options["user"] = server.user
            options["pass"] = server.password
        if info.get("tls_required") or server.tls:
            options["tls_required"] = True
        return b"CONNECT " + msgspec.json.encode(options) + _CRLF

    def _lost(self, protocol: _LaneProtocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            if self._handshake is not None and not self._handshake.done():
                self._handshake.set_exception(LaneUnavailable("connection closed during the handshake"))
            return
        self._stage = _Stage.INFO
        self._transport = None
        self._protocol = None
        self._fail_pongs()
        if self._closing:
            return
        # PINGs and SUBs not yet written are resent by the next connection; publishes wait for it.
        self._outbox = [data for data in self._outbox if data.startswith((b"PUB ", b"HPUB "))]
        self._buffered_while_away = sum(len(data) for data in self._outbox)
        _log.warning("nats_lane.disconnected", name=self.name, error=str(exc) if exc else None)
        self._reconnecting = asyncio.create_task(self._reconnect(), name=f"nats-lane-reconnect-{self.name}")

    async def _reconnect(self) -> None:
        await asyncio.sleep(self.reconnect_wait)
        try:
            await self._connect_any(attempts=0)
        except LaneUnavailable:
            return  # closed meanwhile
        finally:
            self._reconnecting = None
        self.reconnects += 1
        _log.info("nats_lane.reconnected", name=self.name)

    async def _keep_alive(self) -> None:
        """Ping the server; ``max_outstanding_pings`` unanswered: the connection is dead, drop it."""
        while not self._closing:
            await asyncio.sleep(self.ping_interval)
            if not self.is_connected or self._transport is None:
                continue
            if self._outstanding_pings >= self.max_outstanding_pings:
                _log.warning("nats_lane.stale", name=self.name)
                self._transport.abort()
                continue
            self._outstanding_pings += 1
            self._pongs.append(None)
            self._queue(b"PING\r\n")

    def _fail_pongs(self) -> None:
        pongs, self._pongs = self._pongs, []
        for pong in pongs:
            if pong is not None and not pong.done():
                pong.set_exception(LaneUnavailable("the NATS connection was lost"))

    # -- reading -----------------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        parser = self._parser
        buffer = parser.buffer
        buffer += data
        position = 0
        size = len(buffer)
        while position < size:
            if parser.waiting is not None:
                fields, header_size, total = parser.waiting
                if size - position < total + 2:
                    break
                end = position + total
                headers = status = None
                if header_size:
                    headers, status = _parse_headers(bytes(buffer[position : position + header_size]))
                payload = bytes(buffer[position + header_size : end])
                position = end + 2
                parser.waiting = None
                self._deliver(fields, payload, headers, status)
                continue
            line_end = buffer.find(_CRLF, position)
            if line_end < 0:
                break
            line = bytes(buffer[position:line_end])
            position = line_end + 2
            self._operation(line)
        del buffer[:position]

    def _operation(self, line: bytes) -> None:
        op, _, rest = line.partition(b" ")
        op = op.upper()
        if op == b"MSG":
            # MSG <subject> <sid> [reply] <size>
            fields = rest.split()
            self._parser.waiting = (fields[:-1], 0, int(fields[-1]))
        elif op == b"HMSG":
            # HMSG <subject> <sid> [reply] <header size> <total size>
            fields = rest.split()
            self._parser.waiting = (fields[:-2], int(fields[-2]), int(fields[-1]))
        elif op == b"PING":
            if self._transport is not None:
                self._transport.write(b"PONG\r\n")
        elif op == b"PONG":
            self._outstanding_pings = 0
            if self._stage is _Stage.PONG:
                self._settle_handshake({})
            elif self._pongs:
                pong = self._pongs.pop(0)  # PONGs answer PINGs in order
                if pong is not None and not pong.done():
                    pong.set_result(None)
        elif op == b"INFO":
            if self._stage is _Stage.INFO:
                self._settle_handshake(_info_decoder.decode(rest))
            # Later INFOs (cluster changes, lame duck mode): the configured servers are what we use.
        elif op == b"-ERR":
            message = rest.decode(errors="replace").strip().strip("'")
            if self._stage is not _Stage.READY and self._handshake is not None and not self._handshake.done():
                self._handshake.set_exception(LaneUnavailable(message))
            else:
                _log.warning("nats_lane.server_error", name=self.name, error=message)
        # +OK (verbose is off) and anything unknown: nothing to do.

    def _settle_handshake(self, info: dict[str, Any]) -> None:
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_result(info)

    def _deliver(
        self, fields: list[bytes], payload: bytes, headers: dict[str, str] | None, status: str | None
    ) -> None:
        sub = self._subs.get(int(fields[1]))
        if sub is None:
            return  # unsubscribed meanwhile
        reply = fields[2].decode() if len(fields) > 2 else ""
        try:
            sub.callback(LaneMessage(fields[0].decode(), reply, payload, headers, status))
        except Exception:
            _log.exception("nats_lane.callback_failed", subject=sub.subject)


class _LaneProtocol(asyncio.Protocol):
    """One TCP (or TLS) connection of a lane; the lane outlives it across reconnects."""

    def __init__(self, lane: NatsLane) -> None:
        self._lane = lane

    def data_received(self, data: bytes) -> None:
        self._lane._feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lane._lost(self, exc)
