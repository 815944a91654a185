"""One log line per HTTP request, with a correlation id that also travels on every NATS request and
event the request causes (``skillrelay_common.messaging`` reads it from the log context)."""

from __future__ import annotations

import time

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from skillrelay_common.http import new_correlation_id
from skillrelay_worker.correlation import CORRELATION_HEADER, correlation_scope

_log = structlog.get_logger("skillrelay.http")
_HEADER = CORRELATION_HEADER.lower().encode()


def request_log_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        sent = headers.get(_HEADER) or headers.get(b"x-request-id")
        cid = new_correlation_id(sent.decode("latin-1") if sent else None)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (_HEADER, cid.encode())]
            await send(message)

        with correlation_scope(cid):
            try:
                await app(scope, receive, send_with_id)
            finally:
                path = scope.get("path_template") or scope.get("path", "")
                if path not in {"/health", "/ready", "/metrics"}:
                    _log.info(
                        "http.request",
                        method=scope.get("method"),
                        route=str(path),
                        status=status,
                        ms=round((time.perf_counter() - started) * 1000, 1),
                    )

    return middleware
