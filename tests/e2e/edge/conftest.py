"""Fixtures shared by the edge's whole-path tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from skillrelay_auth.app import AuthComponents, nats_wiring, service_resources
from skillrelay_common.lifecycle import ServiceResources
from skillrelay_common.settings import DatabaseSettings, NatsSettings, Settings


@pytest.fixture
async def auth_service(nats_url: str, database_url: str) -> AsyncIterator[ServiceResources]:
    """The real auth service's NATS side on the test session's NATS and a fresh database."""
    settings = Settings(
        nats=NatsSettings(url=nats_url), database=DatabaseSettings(url=database_url), secret_key="k" * 32
    )
    resources = service_resources(settings)
    await resources.start(nats_wiring(resources, AuthComponents(settings)))
    yield resources
    await resources.stop()
