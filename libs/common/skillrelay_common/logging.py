"""Logging for the services: the worker SDK's structlog setup (``skillrelay_worker.logs``), with the
services' own libraries kept quiet."""

from __future__ import annotations

from typing import Any

import structlog

from skillrelay_worker import logs


def configure_logging(level: str = "info", json: bool | None = None, service: str | None = None) -> None:
    numeric = logs.configure_logging(level, json, service)
    # Each migration step, each uvicorn start: routine progress at INFO, quiet unless debugging.
    logs.quiet_libraries(numeric, "alembic", "uvicorn.error")


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
