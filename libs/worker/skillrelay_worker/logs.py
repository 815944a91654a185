"""structlog setup: key-value events, JSON when not on a terminal, correlation ids from contextvars."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import structlog

from skillrelay_worker.correlation import bound_correlation_id

_SECRET_KEYS = frozenset(
    {
        "token",
        "access_token",
        "accesstoken",
        "authorization",
        "client_secret",
        "clientsecret",
        "secret",
        "password",
        "api_key",
        "apikey",
        "refresh_token",
        "code",
    }
)


def _redact_secrets(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Last line of defence: a field named like a secret never reaches a log line."""
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


def _add_correlation_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """The correlation id bound to the running task (``bind_correlation_id``), read when a line is
    logged: binding it costs one context variable per request, not structlog's as well."""
    cid = bound_correlation_id()
    if cid is not None:
        event.setdefault("correlation_id", cid)
    return event


def configure_logging(level: str = "info", json: bool | None = None, service: str | None = None) -> int:
    """Key-value log lines on stderr (JSON when not on a terminal); returns the numeric level."""
    render_json = (not sys.stderr.isatty()) if json is None else json
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_correlation_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    if service:
        structlog.contextvars.bind_contextvars(service=service)
    processors.append(
        structlog.processors.JSONRenderer()
        if render_json
        # Plain tracebacks: rich (when installed) takes long enough drawing one to stall the loop.
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr, format="%(name)s %(message)s")
    quiet_libraries(numeric, "nats")
    return numeric


def quiet_libraries(level: int, *names: str) -> None:
    """Libraries that log routine progress at INFO stay quiet unless debugging."""
    for name in names:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


class RepeatedWarning:
    """A warning that can fire many times a second (each publish during a long NATS outage): logged at
    once, then at most every ``every`` seconds, with how many were left out in between."""

    def __init__(
        self, logger: Any, event: str, every: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger = logger
        self._event = event
        self._every = every
        self._clock = clock
        self._next_at = float("-inf")
        self._left_out = 0

    def __call__(self, **fields: Any) -> None:
        now = self._clock()
        if now < self._next_at:
            self._left_out += 1
            return
        if self._left_out:
            fields["left_out"] = self._left_out
        self._logger.warning(self._event, **fields)
        self._left_out = 0
        self._next_at = now + self._every
