"""Litestar pieces every HTTP service shares: health/readiness routes and the error format.

Errors are ``{"code": "...", "message": "..."}`` with a fitting 4xx; anything unexpected becomes a 500
with a generic message (logged with its correlation id), never a stack trace or a secret.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from litestar import Request, Response, get
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from skillrelay_worker.correlation import fresh_correlation_id

_log = structlog.get_logger("skillrelay.http")

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


class ApiError(Exception):
    """A client-facing error with a stable code; raise it from services and controllers."""

    def __init__(
        self, status_code: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(
    status_code: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response({"code": code, "message": message}, status_code=status_code, headers=headers)


def _api_error_handler(_: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    return error_response(exc.status_code, exc.code, exc.message, exc.headers)


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _http_exception_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status >= 500:
        _log.error("http.error", status=status, detail=exc.detail)
        return error_response(
            status,
            "unavailable" if status == 503 else "internal_error",
            exc.detail if status == 503 else "internal error",
        )
    message = exc.detail
    if isinstance(exc, ValidationException) and exc.extra:
        message = f"{exc.detail}: {_describe_validation(exc.extra)}"
    headers = dict(exc.headers or {})
    if isinstance(exc, NotAuthorizedException):
        return error_response(status, "unauthorized", message, headers)
    return error_response(status, _CODES.get(status, "bad_request"), message, headers)


def _describe_validation(extra: Any) -> str:
    if isinstance(extra, list):
        parts = [str(item.get("message", item)) if isinstance(item, dict) else str(item) for item in extra]
        return "; ".join(parts)
    return str(extra)


def _unexpected_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    _log.exception("http.unhandled", path=request.url.path, error_type=type(exc).__name__)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal error")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiError: _api_error_handler,
    HTTPException: _http_exception_handler,
    Exception: _unexpected_handler,
}


def health_handlers(readiness: ReadinessCheck) -> list[HTTPRouteHandler]:
    """``GET /health`` (the process is up) and ``GET /ready`` (its NATS and database work)."""

    @get("/health", include_in_schema=False, sync_to_thread=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", include_in_schema=False)
    async def ready() -> Response[Any]:
        checks = await readiness()
        ok = all(checks.values())
        return Response(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else HTTP_503_SERVICE_UNAVAILABLE,
        )

    return [health, ready]


def new_correlation_id(request_header: str | None) -> str:
    """Keep a caller's correlation id if it looks sane, otherwise make one."""
    if request_header and len(request_header) <= 64 and request_header.replace("-", "").isalnum():
        return request_header
    return fresh_correlation_id()
