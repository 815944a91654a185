"""Composition root of the MCP edge: MCP Streamable HTTP for every integration. Keeps nothing durable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.types import ASGIApp

from skillrelay_common.http import EXCEPTION_HANDLERS, health_handlers
from skillrelay_common.lifecycle import ServiceResources
from skillrelay_common.logging import configure_logging
from skillrelay_common.metrics import metrics_middleware, metrics_routes
from skillrelay_common.runtime import raise_open_files_limit, serve_http
from skillrelay_common.settings import Settings
from skillrelay_common.tracing import configure_tracing, tracing_middleware
from skillrelay_edge.access.oauth_metadata import protected_resource_routes
from skillrelay_edge.calls.context import AbilityRunner
from skillrelay_edge.handlers import SERVED_ENDPOINTS, make_register_handlers
from skillrelay_edge.runtime import EdgeRuntime
from skillrelay_edge.transport.mcp_api import mcp_asgi, mcp_routes, with_mcp_fast_path
from skillrelay_edge.transport.shutdown import install_exit_hook

SERVICE = "edge"


def _build(
    settings: Settings, local_sessions: bool, runners: dict[str, AbilityRunner] | None
) -> tuple[Litestar, EdgeRuntime]:
    install_exit_hook()  # before uvicorn binds its signal handlers
    resources = ServiceResources(SERVICE, settings, serves=SERVED_ENDPOINTS)
    runtime = EdgeRuntime(settings, local_sessions=local_sessions, runners=runners)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await resources.start(make_register_handlers(runtime))
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()
            await resources.stop()

    app = Litestar(
        route_handlers=[
            *health_handlers(resources.readiness),
            *mcp_routes(runtime, settings.max_body_bytes),
            *protected_resource_routes(settings, runtime.lookup_integration),
            *metrics_routes(),
        ],
        middleware=[metrics_middleware, tracing_middleware],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        logging_config=None,  # configure_logging owns logging: Litestar's default would reset it to INFO
    )
    return app, runtime


def create_app(
    settings: Settings, *, local_sessions: bool = False, runners: dict[str, AbilityRunner] | None = None
) -> Litestar:
    """The edge's Litestar app (every route). ``local_sessions`` and ``runners`` exist for tests and
    benchmarks (no sessions service; fake ability runners)."""
    return _build(settings, local_sessions, runners)[0]


def create_asgi(
    settings: Settings, *, local_sessions: bool = False, runners: dict[str, AbilityRunner] | None = None
) -> ASGIApp:
    """What the edge serves: the app, with MCP requests taking the fast path past Litestar."""
    app, runtime = _build(settings, local_sessions, runners)
    mcp = metrics_middleware(tracing_middleware(mcp_asgi(runtime, settings.max_body_bytes)))
    return with_mcp_fast_path(app, mcp)


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json, service=SERVICE)
    configure_tracing(SERVICE, settings)
    raise_open_files_limit()  # a descriptor per listening client (docs/scale.md)
    serve_http(
        create_asgi(settings),
        settings.http.host,
        settings.http.edge_port,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
