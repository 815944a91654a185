"""Logging for the services: the worker SDK's structlog setup (``skillrelay_worker.logs``), with the
services' own libraries kept quiet."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from skillrelay_worker import logs


def configure_logging(level: str = "info", json: bool | None = None, service: str | None = None) -> None:
    numeric = logs.configure_logging(level, json, service)
    _own_stdlib_logging(numeric)
    # Each migration step, each uvicorn start: routine progress at INFO, quiet unless debugging.
    logs.quiet_libraries(numeric, "alembic", "uvicorn.error", "nats")


def _own_stdlib_logging(level: int) -> None:
    """A service's logging is ours even if something configured it first (a library at import, an app
    built with Litestar's default logging config, which sets the root and its own loggers to INFO with
    their own handlers): every logger defers to the root again, whose level then holds for every
    library. (The worker SDK does not do this: a worker's process belongs to its owner.)"""
    for existing in list(logging.root.manager.loggerDict.values()):
        if isinstance(existing, logging.Logger):
            existing.setLevel(logging.NOTSET)
            existing.handlers.clear()
            existing.propagate = True
    logging.basicConfig(
        level=max(level, logging.WARNING), stream=sys.stderr, format="%(name)s %(message)s", force=True
    )


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
