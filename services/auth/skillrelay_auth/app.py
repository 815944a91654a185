"""Composition root of the auth service: static tokens, OAuth 2.1 authorization server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from skillrelay_auth.edge_link import BusEdgeInvalidator, BusTokenEvents, listen_for_heartbeats
from skillrelay_auth.handlers import SERVED_ENDPOINTS, register_static_token_handlers
from skillrelay_auth.presence import EdgePresence
from skillrelay_auth.repo import SqlStaticTokenStore
from skillrelay_auth.static_tokens import StaticTokens
from skillrelay_common.http import EXCEPTION_HANDLERS, health_handlers
from skillrelay_common.lifecycle import ServiceResources
from skillrelay_common.logging import configure_logging
from skillrelay_common.messaging import Bus
from skillrelay_common.runtime import serve_http
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import AUTH_EVENTS, AUTH_PING

SERVICE = "auth"
MIGRATIONS = Path(__file__).parent / "migrations"


def service_resources(settings: Settings) -> ServiceResources:
    return ServiceResources(
        SERVICE,
        settings,
        schema="auth",
        migrations_dir=MIGRATIONS,
        streams=(AUTH_EVENTS,),
        serves=SERVED_ENDPOINTS,
    )


def nats_wiring(resources: ServiceResources) -> Callable[[Bus], Awaitable[None]]:
    """The ``register`` step of ``ServiceResources.start``: build the use cases, serve their subjects."""

    async def register(bus: Bus) -> None:
        engine: AsyncEngine | None = resources.engine
        assert engine is not None, "the auth service needs its database"
        presence = EdgePresence()
        await listen_for_heartbeats(bus, presence)
        tokens = StaticTokens(
            SqlStaticTokenStore(engine), BusEdgeInvalidator(bus, presence), BusTokenEvents(bus)
        )
        bus.serve_ping(AUTH_PING)
        register_static_token_handlers(bus, tokens)

    return register


def create_app(settings: Settings) -> Litestar:
    resources = service_resources(settings)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await resources.start(nats_wiring(resources))
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
    serve_http(create_app(settings), settings.http.host, settings.http.auth_port)
