"""The correlation id of the running task: carried in a NATS header, bound per call or request, read by
every log line (``logs.py``) and, in the services, by audit records and outgoing NATS messages."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import structlog

CORRELATION_HEADER = "Skillrelay-Correlation-Id"

# The correlation id of the running task, in one context variable of our own: reading it is O(1)
# (structlog's get_contextvars() copies the whole context), and log lines take it from here
# (``logs._add_correlation_id``) rather than from a second binding in structlog's context.
_correlation: ContextVar[str | None] = ContextVar("skillrelay_correlation_id", default=None)
# New ids: a random per-process prefix and a counter (unique like a uuid4, no system call each).
_correlation_prefix = uuid.uuid4().hex[:16]
_correlation_counter = itertools.count()


def fresh_correlation_id() -> str:
    return f"{_correlation_prefix}{next(_correlation_counter):x}"


def bound_correlation_id() -> str | None:
    """The correlation id bound to this task's context, if any."""
    return _correlation.get()


def correlation_id() -> str:
    """The correlation id bound to this task's context, or a new one."""
    return _correlation.get() or fresh_correlation_id()


def bind_correlation_id(cid: str) -> None:
    """Bind ``cid`` for the rest of this task: its log lines, audit records and NATS messages."""
    _correlation.set(cid)


@contextlib.contextmanager
def correlation_scope(cid: str, **log_context: Any) -> Iterator[None]:
    """Bind ``cid`` (and more log context) for the duration of a block."""
    token = _correlation.set(cid)
    try:
        with structlog.contextvars.bound_contextvars(**log_context):
            yield
    finally:
        _correlation.reset(token)
