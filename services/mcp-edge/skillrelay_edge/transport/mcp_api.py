"""HTTP entry point of the MCP endpoint: decode the request, call ``McpEndpoint``, encode the answer.

A Litestar ASGI route: routing stays Litestar's, but the hot path reads the few headers it needs from
the raw scope and writes the answer bytes itself, without building Request/Response objects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol, cast
from urllib.parse import parse_qs

import structlog
from litestar.enums import ScopeType
from litestar.handlers import ASGIRouteHandler, asgi
from litestar.types import ASGIApp, Receive, Scope, Send

from skillrelay_common import metrics
from skillrelay_common.http import new_correlation_id
from skillrelay_common.lean_http import stream_writer
from skillrelay_edge.transport import jsonrpc
from skillrelay_edge.transport.endpoint import BodyTooLarge, HttpAnswer, HttpInput, McpEndpoint, cors_headers
from skillrelay_edge.transport.mailbox import DirectWriter, Mailbox
from skillrelay_worker.correlation import CORRELATION_HEADER, bind_correlation_id

# Mounted (Litestar ASGI handlers cannot take path parameters): the tail is ``/<integrationId>/mcp``.
MCP_MOUNT = "/api/v1/integration/mcpserver"
_log = structlog.get_logger("skillrelay.edge.http")
_INTERNAL = jsonrpc.encode(jsonrpc.error(None, -32603, "Internal error"))
_UNAVAILABLE = jsonrpc.encode(jsonrpc.error(None, -32000, "Service Unavailable: starting up"))
_NOT_FOUND = jsonrpc.encode(jsonrpc.error(None, -32000, "Not Found"))
_NOT_ALLOWED = jsonrpc.encode(jsonrpc.error(None, -32000, "Method Not Allowed"))
_AMBIGUOUS_CREDENTIALS = jsonrpc.encode(
    jsonrpc.error(
        None, -32600, "Bad Request: send one Authorization header (or one authorization query token)"
    )
)
_CORRELATION = CORRELATION_HEADER.lower()


class EndpointHolder(Protocol):
    endpoint: McpEndpoint | None


def _integration_id(scope: Scope) -> str | None:
    parts = str(scope.get("path", "")).rstrip("/").split("/")
    # The mount leaves ``/<id>/mcp``; also accept the full path in case the scope keeps it.
    if len(parts) >= 3 and parts[-1] == "mcp" and parts[-2] and parts[-3] in ("", "mcpserver"):
        return parts[-2]
    return None


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _query_token(scope: Scope) -> str | None:
    query: bytes = scope.get("query_string", b"")
    if b"authorization=" not in query:
        return None
    values = parse_qs(query.decode("latin-1")).get("authorization")
    return values[0] if values else None


def _ambiguous_credentials(scope: Scope) -> bool:
    """Two ``Authorization`` headers (or two ``authorization`` query tokens): which one counts would be
    up to whichever layer reads it, so the request is refused rather than "the last one wins"."""
    headers = sum(1 for name, _ in scope["headers"] if name.lower() == b"authorization")
    query: bytes = scope.get("query_string", b"")
    return headers > 1 or (
        query.count(b"authorization=") > 1
        and len(parse_qs(query.decode("latin-1")).get("authorization", [])) > 1
    )


async def _send_bytes(send: Send, status: int, body: bytes, headers: dict[str, str], media_type: str) -> None:
    raw = [(b"content-length", str(len(body)).encode())]
    if body:
        raw.append((b"content-type", media_type.encode()))
    raw += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _stream_start(answer: HttpAnswer) -> dict[str, object]:
    raw = [(b"content-type", answer.media_type.encode()), (b"x-accel-buffering", b"no")]
    raw += [(name.lower().encode(), value.encode()) for name, value in answer.headers.items()]
    return {"type": "http.response.start", "status": answer.status, "headers": raw}


async def _send_stream(
    send: Send, receive: Receive, answer: HttpAnswer, writer: DirectWriter | None = None
) -> None:
    """An SSE answer: its status and headers, then its stream's frames until either side ends it.

    Listening streams (``answer.listening`` set) stay open for hours on tens of thousands of idle
    clients at once, so what each costs is kept small: the frames go out from the request's own task,
    and one watcher task ends the stream through its mailbox once the client has gone (the generator
    then returns; nothing is cancelled); no context manager or wrapper frame stays alive per stream.
    Once the response has started, ``writer`` (the connection, when the server offers one) is
    attached to the mailbox so a fan-out writes to an idle stream directly. See docs/scale.md."""
    stream, listening = answer.stream, answer.listening
    assert stream is not None
    metrics.SSE_STREAMS.inc()
    try:
        if listening is None:
            await _pump_until_disconnected(send, receive, answer, stream)
            return
        watching = asyncio.ensure_future(_stop_when_disconnected(receive, listening))
        try:
            await send(_stream_start(answer))  # type: ignore[arg-type]
            listening.attach(writer)
            async for chunk in stream:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            listening.attach(None)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (OSError, RuntimeError):
            pass  # the connection broke under a write: the client is gone
        finally:
            listening.attach(None)
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]
    finally:
        metrics.SSE_STREAMS.dec()


async def _stop_when_disconnected(receive: Receive, listening: Mailbox[Any]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    listening.end()


async def _pump_until_disconnected(
    send: Send, receive: Receive, answer: HttpAnswer, stream: AsyncIterator[bytes]
) -> None:
    """A stream that cannot be told to stop (a call's events): pumped in its own task, cancelled
    when the client goes."""
    await send(_stream_start(answer))  # type: ignore[arg-type]

    async def pump() -> None:
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    pumping = asyncio.ensure_future(pump())
    watching = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pumping, watching):
            task.cancel()
        for task in (pumping, watching):
            with contextlib.suppress(asyncio.CancelledError, OSError, RuntimeError):
                await task
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]


def mcp_routes(holder: EndpointHolder, max_body_bytes: int) -> list[ASGIRouteHandler]:
    """The endpoint as a Litestar route (so the app lists it; ``with_mcp_fast_path`` usually answers
    before Litestar sees the request)."""
    return [asgi(MCP_MOUNT, is_mount=True, copy_scope=False)(mcp_asgi(holder, max_body_bytes))]


def mcp_asgi(holder: EndpointHolder, max_body_bytes: int) -> ASGIApp:
    """The MCP endpoint as a plain ASGI app: reads the integration id from the path's tail."""

    async def mcp(scope: Scope, receive: Receive, send: Send) -> None:
        integration_id = _integration_id(scope)
        if integration_id is None:
            await _send_bytes(send, 404, _NOT_FOUND, {}, "application/json")
            return
        endpoint = holder.endpoint
        if endpoint is None:
            await _send_bytes(send, 503, _UNAVAILABLE, {}, "application/json")
            return
        method = str(scope.get("method", ""))

        async def read_body() -> bytes:
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
                chunk = cast("bytes", message.get("body", b""))
                size += len(chunk)
                if size > max_body_bytes:
                    raise BodyTooLarge
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)

        if _ambiguous_credentials(scope):
            await _send_bytes(send, 400, _AMBIGUOUS_CREDENTIALS, {}, "application/json")
            return
        headers = _headers(scope)
        # One id ties this request's log lines, audit records and worker call together; a caller's
        # sane id is kept. Bound in this request's own task (uvicorn runs one per request).
        correlation = new_correlation_id(headers.get(_CORRELATION) or headers.get("x-request-id"))
        bind_correlation_id(correlation)
        origin = headers.get("origin")

        def finish_headers(answer: HttpAnswer) -> None:
            answer.headers[CORRELATION_HEADER] = correlation
            if origin is not None and answer.status != 403:
                # The origin passed the DNS-rebinding check: let browser clients read the answer.
                answer.headers.update(cors_headers(origin))

        async def send_stream(answer: HttpAnswer) -> None:
            finish_headers(answer)
            await _send_stream(send, receive, answer)

        inp = HttpInput(
            integration_id=integration_id,
            headers=headers,
            query_token=_query_token(scope),
            read_body=read_body,
            send_stream=send_stream,
        )
        try:
            if method == "POST":
                answer = await endpoint.post(inp)
            elif method == "GET":
                answer = await endpoint.get(inp)
            elif method == "DELETE":
                answer = await endpoint.delete(inp)
            elif method == "OPTIONS":
                answer = endpoint.preflight(inp)
            else:
                await _send_bytes(
                    send, 405, _NOT_ALLOWED, {"Allow": "GET, POST, DELETE, OPTIONS"}, "application/json"
                )
                return
        except Exception:
            _log.exception("mcp.request.failed", method=method)
            await _send_bytes(send, 500, _INTERNAL, {}, "application/json")
            return
        if answer.sent:
            return
        if answer.stream is not None:
            # A listening stream may stay open for hours: drop what only the request needed.
            del inp, headers, read_body, send_stream
            finish_headers(answer)
            await _send_stream(send, receive, answer, stream_writer(scope))
        else:
            finish_headers(answer)
            await _send_bytes(send, answer.status, answer.body or b"", answer.headers, answer.media_type)

    return mcp


MCP_ROUTE_TEMPLATE = MCP_MOUNT + "/{integration_id}/mcp"


def with_mcp_fast_path(app: ASGIApp, mcp: ASGIApp) -> ASGIApp:
    """Send MCP requests straight to ``mcp`` (already wrapped in the metrics and tracing middleware),
    everything else (and lifespan) to ``app``. Litestar's router, exception and scope handling cost
    about 10% of the edge's CPU per MCP request; the endpoint needs none of them (it answers every
    error itself)."""
    prefix = MCP_MOUNT + "/"

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["path"].startswith(prefix):
            scope["path_template"] = MCP_ROUTE_TEMPLATE  # the route label of the metrics and spans
            await mcp(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch
