"""The configured log level holds for every library a service uses, after the service's app is built
(Litestar's default logging config used to reset the root logger to INFO with its own handler)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar import Litestar

from skillrelay_auth.app import create_app as create_auth
from skillrelay_common.logging import configure_logging
from skillrelay_common.settings import Settings
from skillrelay_edge.app import create_asgi as create_edge
from skillrelay_registry.app import create_app as create_registry

LIBRARIES = ("httpx", "httpcore", "litestar", "asyncio", "nats", "sqlalchemy", "alembic", "uvicorn.error")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in LIBRARIES}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


@pytest.mark.parametrize(
    "build", [create_edge, create_auth, create_registry], ids=["edge", "auth", "registry"]
)
def test_warning_holds_after_the_app_is_built(
    build: Callable[[Settings], Any], restored_logging: None
) -> None:
    Litestar(route_handlers=[])  # someone configured logging first (root at INFO, a queue handler)
    configure_logging("warning", json=True, service="test")
    ours = list(logging.getLogger().handlers)
    build(Settings(secret_key="k" * 32))
    assert logging.getLogger().handlers == ours
    for name in LIBRARIES:
        logger = logging.getLogger(name)
        assert not logger.isEnabledFor(logging.INFO), name
        assert logger.isEnabledFor(logging.WARNING), name
