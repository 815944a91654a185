"""A lean MCP Streamable HTTP client for one upstream server (a skillset source of type ``mcp``).

Both eras: it first asks ``server/discover`` at 2026-07-28 and, when the upstream speaks it, every
request stands alone (the per-request ``_meta``, no session). Anything else falls back to the 2025
handshake (``initialize``, ``Mcp-Session-Id``), re-opened once when the upstream forgets the session
(HTTP 404). The source's own headers go with every request (never the caller's token).

Every connection is pinned to the address the SSRF guard checked (``outbound.TargetCache``): the URL's
host is resolved and checked once per lifetime, the request goes to that address with the name in
``Host`` (and in TLS SNI), so a name that re-resolves to a private address is never reached.

What the upstream sends before its answer (progress, log messages, requests to the client) is handed
to the caller's ``MessageHandler``; an answer to a server-to-client request is posted back on the same
session. Errors are ``UpstreamError`` whose message is safe to show a client (no header values).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections import deque
from collections.abc import Callable
from typing import Any, Literal, Protocol

import httpx
import msgspec
import structlog

from skillrelay_common.mcp_headers import encode_header_value, param_headers
from skillrelay_common.outbound import (
    BodyTooLarge,
    OutboundClient,
    OutboundError,
    RequestShape,
    Response,
)
from skillrelay_common.outbound.targets import TargetCache
from skillrelay_common.schemas.abilities import SourceDef
from skillrelay_common.ssrf import TargetRefused
from skillrelay_common.upstream.sse import EventTooLarge, SseReader

MODERN_VERSION = "2026-07-28"
SESSION_VERSION = "2025-11-25"
PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
METHOD_NOT_FOUND = -32601
CLIENT_INFO = {"name": "skillrelay-edge", "version": "0.1.0"}
# What a session-era upstream may ask of the edge: it relays each to its own client when that
# client can answer (and says so with an error when not).
SESSION_CAPABILITIES: dict[str, Any] = {"elicitation": {"form": {}, "url": {}}, "sampling": {}, "roots": {}}
# Headers the client sets itself: a source's headers may not replace them.
_OWN_HEADERS = frozenset(
    {
        "host",
        "content-type",
        "accept",
        "content-length",
        "mcp-session-id",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
        "connection",
        "transfer-encoding",
    }
)
# Methods whose target is named in the 2026 ``Mcp-Name`` header, and the param that holds it.
_NAME_PARAM = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
# One answer, JSON or a whole SSE stream (each SSE event is bounded on its own as well).
MAX_ANSWER_BYTES = 16 * 1024 * 1024
# Request shapes kept per connection (one per method, name and session): past it they start over.
_MAX_SHAPES = 512

Era = Literal["stateless", "session"]
_log = structlog.get_logger("skillrelay.upstream")
_decoder = msgspec.json.Decoder()


class UpstreamError(Exception):
    """The upstream could not be used; ``message`` is safe to show (it never holds header values)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UpstreamUnreachable(UpstreamError):
    """No connection, refused by the SSRF guard, or no answer within the source's timeout."""


class UpstreamRpcError(UpstreamError):
    """The upstream answered the request with a JSON-RPC error (relayed as it is)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class MessageHandler(Protocol):
    """What the upstream sends while it works on a request: ``notify`` for notifications (progress,
    log messages) and ``ask`` for requests to the client (elicitation, sampling, roots) whose
    result is returned, or an ``UpstreamRpcError`` raised for an error answer."""

    async def notify(self, method: str, params: dict[str, Any]) -> None: ...

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]: ...


class _IgnoreMessages:
    async def notify(self, method: str, params: dict[str, Any]) -> None:
        return None

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise UpstreamRpcError(-32601, f"{method} is not available here")


IGNORE_MESSAGES: MessageHandler = _IgnoreMessages()


class UpstreamConnection:
    """One upstream, as one client: the era it speaks, its session (2025), a pool of connections.

    ``eras`` orders what to try (tests pin the session era with ``("session",)``). Safe to share
    between concurrent requests; the handshake runs once."""

    def __init__(
        self,
        source: SourceDef,
        *,
        targets: TargetCache,
        http: httpx.AsyncClient | None = None,
        outbound: OutboundClient | None = None,
        eras: tuple[Era, ...] = ("stateless", "session"),
    ) -> None:
        if source.type != "mcp" or not source.url:
            raise UpstreamError(f"source {source.id} is not an MCP server with a URL")
        self.source = source
        self.url: str = source.url
        self.timeout = source.timeout_ms / 1000
        self._targets = targets
        self._own_http = http is None
        self.http = http or new_http_client()
        # Requests and their answers go through the lean pooled HTTP/1.1 client (``outbound``); httpx
        # carries only what is rare: notifications and answers posted back, the change stream, DELETE.
        self._own_outbound = outbound is None
        self.outbound = outbound or OutboundClient(targets)
        self._shapes: dict[tuple[tuple[str, str], ...], RequestShape] = {}
        self._eras = eras
        self._headers = {
            name: value for name, value in source.headers.items() if name.lower() not in _OWN_HEADERS
        }
        self.era: Era | None = None
        self.session_id: str | None = None
        self.server_info: dict[str, Any] = {}
        self.server_capabilities: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._handshake = asyncio.Lock()

    @property
    def label(self) -> str:
        return self.source.name or self.source.id

    async def aclose(self) -> None:
        """Ends the session (2025: ``DELETE``, best effort) and the pool when it is this one's own."""
        if self.era == "session" and self.session_id is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    url, headers = await self.pinned(self._session_headers())
                    await self.http.delete(url, headers=headers)
        self.session_id = None
        if self._own_http:
            await self.http.aclose()
        if self._own_outbound:
            await self.outbound.aclose()

    async def connect(self) -> None:
        """Settle the era (and open the session) once; concurrent callers wait for the first."""
        if self.era is not None:
            return
        async with self._handshake:
            if self.era is not None:
                return
            async with self._deadline("connect"):
                await self._negotiate()

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        messages: MessageHandler = IGNORE_MESSAGES,
        client_capabilities: dict[str, Any] | None = None,
        log_level: str | None = None,
        on_request_id: Callable[[int], None] | None = None,
        timeout: float | None = None,
        input_schema: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send one request and return its result; raises ``UpstreamError``.

        ``client_capabilities`` and ``log_level`` go into the 2026 ``_meta`` (a session declares
        them once). ``on_request_id`` learns the JSON-RPC id (to cancel it, 2025). ``input_schema``
        (the tool's, for ``tools/call``): the arguments it marks ``x-mcp-header`` also go in
        ``Mcp-Param-{Name}`` headers, as a 2026 upstream requires."""
        await self.connect()
        async with self._deadline(method, timeout):
            for attempt in range(2):
                request_id = next(self._ids)
                if on_request_id is not None:
                    on_request_id(request_id)
                body = self.request_body(request_id, method, params or {}, client_capabilities, log_level)
                try:
                    return await self._exchange(
                        request_id, method, params or {}, body, messages, input_schema
                    )
                except _HttpStatus as exc:
                    raise _status_error(self.label, method, exc.status) from None
                except _SessionLost:
                    if attempt:
                        raise UpstreamError(f"upstream {self.label} keeps forgetting its session") from None
                    await self._reopen_session()
        raise AssertionError("unreachable")  # pragma: no cover

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """A notification to the upstream (best effort: ``notifications/cancelled``)."""
        if self.era is None:
            return
        body = {"jsonrpc": "2.0", "method": method, "params": params}
        with contextlib.suppress(Exception):
            async with asyncio.timeout(min(self.timeout, 5.0)):
                await self._post(body, method)

    # -- the handshake -----------------------------------------------------------------------

    async def _negotiate(self) -> None:
        for era in self._eras:
            if era == "stateless" and await self._discover():
                self.era = "stateless"
                return
            if era == "session":
                await self._initialize()
                self.era = "session"
                return
        raise UpstreamError(f"upstream {self.label} speaks no MCP revision the edge does")

    async def _discover(self) -> bool:
        """Whether the upstream speaks 2026-07-28 (a ``server/discover`` answer naming it)."""
        request_id = next(self._ids)
        body = self.request_body(request_id, "server/discover", {}, {}, None)
        try:
            result = await self._exchange(request_id, "server/discover", {}, body, IGNORE_MESSAGES)
        except (UpstreamRpcError, _HttpStatus):
            return False  # an older server: it refuses the method or the version
        versions = result.get("supportedVersions")
        if not isinstance(versions, list) or MODERN_VERSION not in versions:
            return False
        self.server_info = _dict(result.get("serverInfo")) or _dict(
            _dict(result.get("_meta")).get(SERVER_INFO_KEY)
        )
        self.server_capabilities = _dict(result.get("capabilities"))
        return True

    async def _initialize(self) -> None:
        self.session_id = None
        request_id = next(self._ids)
        params = {
            "protocolVersion": SESSION_VERSION,
            "capabilities": SESSION_CAPABILITIES,
            "clientInfo": CLIENT_INFO,
        }
        body = {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}
        self.era = "session"  # the handshake's own requests are session-era requests
        try:
            try:
                result = await self._exchange(request_id, "initialize", params, body, IGNORE_MESSAGES)
            except _HttpStatus as exc:
                raise UpstreamError(f"upstream {self.label} refused initialize (HTTP {exc.status})") from None
            self.server_info = _dict(result.get("serverInfo"))
            self.server_capabilities = _dict(result.get("capabilities"))
            await self._post(
                {"jsonrpc": "2.0", "method": "notifications/initialized"}, "notifications/initialized"
            )
        except BaseException:
            self.era = None
            raise

    async def _reopen_session(self) -> None:
        async with self._handshake:
            self.era = None
            await self._initialize()

    # -- one exchange ------------------------------------------------------------------------

    def request_body(
        self,
        request_id: int,
        method: str,
        params: dict[str, Any],
        client_capabilities: dict[str, Any] | None,
        log_level: str | None,
    ) -> dict[str, Any]:
        if self.era != "session" and method != "initialize":
            meta = dict(_dict(params.get("_meta")))
            meta[PROTOCOL_VERSION_KEY] = MODERN_VERSION
            meta[CLIENT_CAPABILITIES_KEY] = client_capabilities or {}
            meta[CLIENT_INFO_KEY] = CLIENT_INFO
            if log_level is not None:
                meta[LOG_LEVEL_KEY] = log_level
            params = {**params, "_meta": meta}
        return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}

    async def _exchange(
        self,
        request_id: int,
        method: str,
        params: dict[str, Any],
        body: dict[str, Any],
        messages: MessageHandler,
        input_schema: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One POST through the lean outbound client: a JSON answer, or an SSE answer read as it
        arrives (notifications and requests to the client relayed until the result)."""
        try:
            headers = self.headers_for(method, params)
            mirrored = self._param_headers(method, params, input_schema)
            # Argument values change from call to call: such a request's shape is not kept.
            shape = RequestShape("POST", self.url, headers | mirrored) if mirrored else self._shape(headers)
        except TargetRefused as exc:
            raise UpstreamUnreachable(f"upstream {self.label} refused: {exc}") from None
        chunks = _Chunks(asyncio.get_running_loop())
        sending = asyncio.ensure_future(
            self.outbound.send(
                shape,
                body=msgspec.json.encode(body),
                timeout=self.timeout,
                max_body=MAX_ANSWER_BYTES,
                stream=chunks.put,
            )
        )
        sending.add_done_callback(chunks.end)
        reader: SseReader | None = None
        asked: set[asyncio.Task[None]] = set()
        try:
            while (chunk := await chunks.get()) is not None:
                reader = reader or SseReader()
                try:
                    events = reader.feed(chunk)
                except EventTooLarge as exc:
                    raise UpstreamError(f"upstream {self.label}: {exc}") from None
                for data in events:
                    result = await self._on_event(data, request_id, method, messages, asked)
                    if result is not None:
                        if method == "initialize":
                            self._take_session(await sending)  # its headers name the session
                        else:
                            # The stream ends right after its result: wait a moment for that, so
                            # the connection is kept for the next request rather than closed.
                            await asyncio.wait({sending}, timeout=0.5)
                        return result
            response = sending.result()
        except TargetRefused as exc:
            raise UpstreamUnreachable(f"upstream {self.label} refused: {exc}") from None
        except BodyTooLarge:
            raise UpstreamError(
                f"upstream {self.label} answered more than {MAX_ANSWER_BYTES} bytes"
            ) from None
        except OutboundError as exc:
            raise UpstreamUnreachable(f"cannot reach upstream {self.label}: {exc}") from None
        finally:
            if not sending.done():
                sending.cancel()
            for task in asked:
                task.cancel()
        if reader is not None:
            raise UpstreamError(f"upstream {self.label} ended the stream of {method} without an answer")
        if response.status == 404 and self.era == "session" and self.session_id is not None:
            raise _SessionLost
        if method == "initialize":
            self._take_session(response)
        content_type = (response.header(b"content-type") or b"").decode("latin-1")
        if response.status >= 400 and "json" not in content_type:
            raise _HttpStatus(response.status)
        try:
            message = _decoder.decode(response.body)
        except msgspec.DecodeError:
            raise UpstreamError(f"upstream {self.label} answered {method} with something not JSON") from None
        if not isinstance(message, dict):
            raise UpstreamError(f"upstream {self.label} answered {method} with something not JSON-RPC")
        return _result_of(message, self.label, method)

    async def _on_event(
        self,
        data: str,
        request_id: int,
        method: str,
        messages: MessageHandler,
        asked: set[asyncio.Task[None]],
    ) -> dict[str, Any] | None:
        """One SSE event of an answer: the result (returned), a notification or a request to relay."""
        try:
            message = _decoder.decode(data)
        except msgspec.DecodeError:
            return None  # a keep-alive or a malformed event: not ours to fail on
        if not isinstance(message, dict):
            return None
        if "method" not in message:
            return _result_of(message, self.label, method) if message.get("id") == request_id else None
        params = _dict(message.get("params"))
        if "id" in message:
            # Answered on its own task: the upstream may send more before it needs the answer.
            task = asyncio.create_task(self._answer(message["id"], message["method"], params, messages))
            asked.add(task)
            task.add_done_callback(asked.discard)
        else:
            await messages.notify(message["method"], params)
        return None

    def _take_session(self, response: Response) -> None:
        session = response.header(b"mcp-session-id")
        self.session_id = session.decode("latin-1") if session else None

    def _shape(self, headers: dict[str, str]) -> RequestShape:
        """The request's shape (checked and encoded once per set of headers, not per call)."""
        key = tuple(headers.items())
        shape = self._shapes.get(key)
        if shape is None:
            if len(self._shapes) >= _MAX_SHAPES:
                self._shapes.clear()
            shape = self._shapes[key] = RequestShape("POST", self.url, headers)
        return shape

    async def _answer(
        self, request_id: Any, method: str, params: dict[str, Any], messages: MessageHandler
    ) -> None:
        """Relay a server-to-client request and post its answer back to the upstream."""
        try:
            result = await messages.ask(method, params)
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "result": result}
        except UpstreamRpcError as exc:
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.data is not None:
                error["data"] = exc.data
            reply = {"jsonrpc": "2.0", "id": request_id, "error": error}
        with contextlib.suppress(Exception):
            await self._post(reply, "")

    async def _post(self, body: dict[str, Any], method: str) -> None:
        """A message with no answer of its own (notification, response): HTTP 202 expected."""
        url, headers = await self.pinned(self.headers_for(method, {}))
        response = await self.http.post(url, content=msgspec.json.encode(body), headers=headers)
        if response.status_code >= 400:
            _log.info("upstream.post.refused", source=self.source.id, status=response.status_code)

    def headers_for(self, method: str, params: dict[str, Any]) -> dict[str, str]:
        headers = dict(self._headers)
        headers["Content-Type"] = "application/json"
        headers["Accept"] = "application/json, text/event-stream"
        if self.era == "session":
            headers.update(self._session_headers())
        elif method != "initialize":
            headers["MCP-Protocol-Version"] = MODERN_VERSION
            if method:
                headers["Mcp-Method"] = method
            name_param = _NAME_PARAM.get(method)
            if name_param is not None and isinstance(params.get(name_param), str):
                headers["Mcp-Name"] = encode_header_value(params[name_param])
        return headers

    def _param_headers(
        self, method: str, params: dict[str, Any], input_schema: dict[str, Any] | None
    ) -> dict[str, str]:
        """``Mcp-Param-{Name}`` for a 2026 ``tools/call`` whose tool marks arguments ``x-mcp-header``."""
        if input_schema is None or method != "tools/call" or self.era == "session":
            return {}
        return param_headers(input_schema, params.get("arguments"))

    def _session_headers(self) -> dict[str, str]:
        headers = {"MCP-Protocol-Version": SESSION_VERSION}
        if self.session_id is not None:
            headers["Mcp-Session-Id"] = self.session_id
        return headers

    async def pinned(self, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The URL to connect to (the checked address) and the headers naming the real host."""
        try:
            target = await self._targets.target(self.url)
        except TargetRefused as exc:
            raise UpstreamUnreachable(f"upstream {self.label} refused: {exc}") from None
        headers = {**self._headers, **headers, "Host": target.host_header}
        return target.connect_url, headers

    @contextlib.asynccontextmanager
    async def _deadline(self, what: str, timeout: float | None = None) -> Any:
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                yield
        except TimeoutError:
            raise UpstreamUnreachable(
                f"upstream {self.label} did not answer {what} within {limit * 1000:g} ms"
            ) from None


class _Chunks:
    """An SSE answer's body as it arrives (from the protocol's callback), read by one task; ``None``
    once the request is over (its result or error is then the ``send`` future's)."""

    __slots__ = ("_done", "_items", "_loop", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._done = False

    def put(self, chunk: bytes) -> None:
        self._items.append(chunk)
        self._wake()

    def end(self, _: object) -> None:
        self._done = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> bytes | None:
        while not self._items:
            if self._done:
                return None
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


class _SessionLost(Exception):
    """HTTP 404 for the session: the upstream forgot it (restart, expiry)."""


class _HttpStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def new_http_client() -> httpx.AsyncClient:
    """A pool for upstream requests: no redirects (a redirect could leave the checked address), no
    environment proxies, time bounded by the caller (``asyncio.timeout``), TLS names from SNI."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=5.0)
    # TCP_NODELAY: a request goes out as head then body; with Nagle's algorithm the body waits for the
    # head's delayed ACK (~40 ms on Linux) on every call.
    transport = httpx.AsyncHTTPTransport(
        limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    )
    return httpx.AsyncClient(
        follow_redirects=False, trust_env=False, timeout=httpx.Timeout(None), transport=transport
    )


def _result_of(message: dict[str, Any], label: str, method: str) -> dict[str, Any]:
    error = message.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        text = error.get("message")
        raise UpstreamRpcError(
            code if isinstance(code, int) else -32603,
            str(text) if text is not None else f"upstream {label} failed {method}",
            error.get("data"),
        )
    result = message.get("result")
    if not isinstance(result, dict):
        raise UpstreamError(f"upstream {label} answered {method} without a result")
    return result


def _status_error(label: str, method: str, status: int) -> UpstreamError:
    if status in {401, 403}:
        return UpstreamError(
            f"upstream {label} refused the source's credentials for {method} (HTTP {status})"
        )
    return UpstreamError(f"upstream {label} answered {method} with HTTP {status}")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
