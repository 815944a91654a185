"""How the registry's HTTP layer answers errors: always ``{"code", "message"}``, a 4xx for anything the
client sent, 503 when a dependency (auth, sessions, PostgreSQL) is unreachable, 500 only for bugs."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import ValidationException
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from skillrelay_common.http import EXCEPTION_HANDLERS, error_response
from skillrelay_registry.errors import RegistryError, describe_problem

_log = structlog.get_logger("skillrelay.registry")


def _registry_error_handler(_: Request[Any, Any, Any], exc: RegistryError) -> Response[Any]:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(exc.status, exc.code, exc.message, headers)


def _validation_error_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """A body or query that does not decode: say which field and why (``handler.type: unknown handler
    type 'foo'``), not only that validation failed."""
    dynamic_only = "/resource/" in request.url.path or "/prompt/" in request.url.path
    problems = (
        [describe_problem(item, dynamic_handlers_only=dynamic_only) for item in exc.extra]
        if isinstance(exc.extra, list)
        else []
    )
    if not problems:
        return error_response(400, "bad_request", str(exc.detail))
    return error_response(400, "bad_request", "; ".join(problems))


def _too_deep_handler(_: Request[Any, Any, Any], __: RecursionError) -> Response[Any]:
    # Only client JSON nests this deep (the decoder recurses once per level).
    return error_response(400, "bad_request", "JSON is nested too deeply")


def _database_error_handler(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[Any]:
    """PostgreSQL refusing a value (SQLSTATE class 22: a NUL character in text, a number out of range)
    means the client sent it: 400. A lost or refused connection means the database is unreachable:
    503, like any other dependency that is down. A bug in a statement (class 42) stays a 500."""
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    if sqlstate.startswith("22"):
        return error_response(
            400, "bad_request", _DATA_ERRORS.get(sqlstate, "a value cannot be stored as given")
        )
    if not sqlstate.startswith("42"):
        return _database_unavailable(request, exc)
    unexpected: Any = EXCEPTION_HANDLERS[Exception]
    response: Response[Any] = unexpected(request, exc)
    return response


def _database_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    _log.warning("registry.database.unavailable", path=request.url.path, error_type=type(exc).__name__)
    return error_response(503, "unavailable", "the database is not reachable; retry shortly")


_DATA_ERRORS = {
    "22021": "text may not contain NUL characters",
    "22P05": "text may not contain NUL characters",
    "22003": "a number is out of range",
}


EXCEPTION_HANDLERS_OF_REGISTRY: dict[Any, Any] = {
    **EXCEPTION_HANDLERS,
    RegistryError: _registry_error_handler,
    ValidationException: _validation_error_handler,
    RecursionError: _too_deep_handler,
    DBAPIError: _database_error_handler,
    # Connecting failed (refused, reset, timed out) or the pool had no connection in time.
    OSError: _database_unavailable,
    PoolTimeoutError: _database_unavailable,
}
