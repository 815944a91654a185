"""Composition root of the registry: REST API, dashboard, NATS handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from sqlalchemy.ext.asyncio import async_sessionmaker

from skillrelay_common.http import health_handlers
from skillrelay_common.lifecycle import ServiceResources, Wiring
from skillrelay_common.logging import configure_logging
from skillrelay_common.metrics import metrics_middleware, metrics_routes
from skillrelay_common.request_log import request_log_middleware
from skillrelay_common.runtime import serve_http
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import REGISTRY_EVENTS
from skillrelay_common.tracing import configure_tracing, tracing_middleware
from skillrelay_registry.api import api_router
from skillrelay_registry.api_audit import audit_routes
from skillrelay_registry.dashboard import dashboard_router
from skillrelay_registry.handlers import SERVED_ENDPOINTS, register_handlers
from skillrelay_registry.http_errors import EXCEPTION_HANDLERS_OF_REGISTRY
from skillrelay_registry.json_depth import refuse_deep_json
from skillrelay_registry.service import RegistryService
from skillrelay_registry.sources.refresher import SourceRefresher
from skillrelay_registry.usage.book import UsageBook
from skillrelay_registry.usage.feed import UsageFeed

SERVICE = "registry"


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Skillrelay registry",
        version="1.0.0",
        description="Skillsets, abilities, resources, prompts, blueprints, OAuth connections and MCP server "
        "integrations. Every call needs Authorization: Bearer <API key>.",
        path="/schema",
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(type="http", scheme="bearer", description="an owner's API key"),
                "adminToken": SecurityScheme(type="http", scheme="bearer", description="the admin token"),
            }
        ),
    )


def create_app(settings: Settings) -> Litestar:
    resources = ServiceResources(
        SERVICE,
        settings,
        schema="registry",
        migrations_dir=Path(__file__).parent / "migrations",
        streams=(REGISTRY_EVENTS,),
        serves=SERVED_ENDPOINTS,
    )

    # Usage figures from the audit stream, for the REST API and the dashboard's charts.
    usage = UsageFeed(UsageBook())

    refreshers: list[SourceRefresher] = []

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.usage = usage

        def register(wiring: Wiring) -> None:
            service = RegistryService(
                async_sessionmaker(wiring.require_engine(), expire_on_commit=False), wiring.bus, settings
            )
            # Controllers (and the dashboard) take the service from the application state.
            app.state.registry = service
            register_handlers(wiring.answers, service)
            refreshers.append(SourceRefresher(service, settings.source_refresh_seconds))

        await resources.start(register)
        assert resources.bus is not None
        await usage.start(resources.bus)
        for refresher in refreshers:
            refresher.start()
        try:
            yield
        finally:
            for refresher in refreshers:
                await refresher.stop()
            registry = app.state.get("registry")
            if isinstance(registry, RegistryService):
                await registry.close_sources()
            await usage.stop()
            await resources.stop()

    return Litestar(
        route_handlers=[
            *health_handlers(resources.readiness),
            api_router(),
            *audit_routes(lambda: resources.bus),
            *metrics_routes(),
            dashboard_router(settings, lambda: resources.bus),
        ],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS_OF_REGISTRY,
        logging_config=None,  # configure_logging owns logging: Litestar's default would reset it to INFO
        openapi_config=openapi_config(),
        request_max_body_size=settings.max_body_bytes,
        before_request=refuse_deep_json,
        middleware=[request_log_middleware, metrics_middleware, tracing_middleware],
    )


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json, service=SERVICE)
    configure_tracing(SERVICE, settings)
    serve_http(
        create_app(settings),
        settings.http.host,
        settings.http.registry_port,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
