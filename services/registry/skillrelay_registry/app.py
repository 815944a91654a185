"""Composition root of the registry: REST API, dashboard, NATS handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar

from skillrelay_common.http import EXCEPTION_HANDLERS, health_handlers
from skillrelay_common.lifecycle import ServiceResources
from skillrelay_common.logging import configure_logging
from skillrelay_common.runtime import serve_http
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import REGISTRY_EVENTS
from skillrelay_registry.handlers import SERVED_ENDPOINTS, register_handlers

SERVICE = "registry"


def create_app(settings: Settings) -> Litestar:
    resources = ServiceResources(
        SERVICE,
        settings,
        schema="registry",
        migrations_dir=Path(__file__).parent / "migrations",
        streams=(REGISTRY_EVENTS,),
        serves=SERVED_ENDPOINTS,
    )

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await resources.start(register_handlers)
        try:
            yield
        finally:
            await resources.stop()

    return Litestar(
        route_handlers=[*health_handlers(resources.readiness)],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
    )


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json, service=SERVICE)
    serve_http(create_app(settings), settings.http.host, settings.http.registry_port)
