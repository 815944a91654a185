"""Repository-wide pytest set-up that belongs to no one package.

Tests that run a worker or a service in-process log through structlog's default configuration, whose
console renderer draws exceptions with ``rich`` when it is installed (a test dependency pulls it in).
Drawing one traceback that way holds the event loop for about a second on a loaded machine — longer
than a worker's heartbeat in the tests — so tracebacks are printed plainly instead.
"""

from __future__ import annotations

import structlog


def pytest_configure() -> None:
    processors = list(structlog.get_config()["processors"])
    plain = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    structlog.configure(processors=[*processors[:-1], plain])
