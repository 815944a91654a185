"""A client that keeps its credential in a header, played by a small reverse proxy.

The conformance suite's SEP-2243 header scenarios (``http-header-validation``,
``http-custom-header-server-validation``) send their requests to the URL's path alone: the query
string that carries an integration's ``?authorization=`` token is dropped, and the suite has no way
to send a header of its own. A real client configured with ``Authorization: Bearer <token>`` is what
this proxy stands for: it forwards every request to the edge unchanged (headers, body, streamed
answer), adding that header when the request carries no credential of its own."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from typing import Any

import httpx
import uvicorn

from skillrelay_devstack.embedded import free_port

# Hop-by-hop headers (RFC 9110 section 7.6.1) and the ones the HTTP libraries set themselves.
_NOT_FORWARDED = {b"host", b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"upgrade"}
_NOT_RETURNED = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class BearerProxy:
    """``with BearerProxy(edge_url, token) as proxy: proxy.url + path`` reaches ``edge_url + path``
    with ``Authorization: Bearer <token>`` (unless the request has an Authorization header or an
    ``authorization`` query parameter already)."""

    def __init__(self, upstream: str, token: str) -> None:
        self.upstream = upstream.rstrip("/")
        self._authorization = f"Bearer {token}".encode()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(name, value) for name, value in scope["headers"] if name not in _NOT_FORWARDED]
        query: bytes = scope.get("query_string", b"")
        has_credential = any(name == b"authorization" for name, _ in headers) or b"authorization=" in query
        if not has_credential:
            headers.append((b"authorization", self._authorization))
        url = self.upstream + scope["raw_path"].decode() + (f"?{query.decode()}" if query else "")
        assert self._client is not None
        request = self._client.build_request(scope["method"], url, headers=headers, content=body)
        response = await self._client.send(request, stream=True)
        try:
            returned = [
                (name.encode(), value.encode())
                for name, value in response.headers.multi_items()
                if name.lower() not in _NOT_RETURNED
            ]
            await send({"type": "http.response.start", "status": response.status_code, "headers": returned})
            async for chunk in response.aiter_raw():  # as sent: an SSE answer streams through
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._client = httpx.AsyncClient(timeout=httpx.Timeout(60.0))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def __enter__(self) -> BearerProxy:
        # h11 parses requests as any HTTP server would: header names case-insensitively, the
        # optional whitespace around a value dropped (RFC 9110 section 5.5).
        config = uvicorn.Config(self, host="127.0.0.1", port=self.port, http="h11", log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=asyncio.run, args=(self._server.serve(),), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the bearer proxy did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.handle_exit(signal.SIGTERM, None)
        if self._thread is not None:
            self._thread.join(10)
