"""The owner dashboard, served by the registry under ``/dashboard``: server-rendered pages (Jinja2
through Litestar's template engine) with htmx, no JavaScript build step.

``dashboard_router(settings, get_bus)`` is the one thing the registry app includes. Every page calls
``RegistryService``, the same use cases (and validation) as the REST API.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from litestar import Router
from litestar.di import Provide
from litestar.static_files import create_static_files_router

from skillrelay_common.messaging import Bus
from skillrelay_common.settings import Settings
from skillrelay_registry.api.common import provide_service
from skillrelay_registry.dashboard.audit_stream import audit_stream_handler
from skillrelay_registry.dashboard.pages import (
    PREFIX,
    SignInRequired,
    provide_owner_id,
    registry_error_page,
    sign_in_redirect,
)
from skillrelay_registry.dashboard.reveal import Revealer
from skillrelay_registry.dashboard.security import DashboardMiddleware, csrf_guard
from skillrelay_registry.dashboard.session import RevealCodec, SessionCodec
from skillrelay_registry.dashboard.views_account import home, sign_in_handler, sign_in_page, sign_out_handler
from skillrelay_registry.dashboard.views_integrations import INTEGRATION_HANDLERS
from skillrelay_registry.dashboard.views_search import SEARCH_HANDLERS
from skillrelay_registry.dashboard.views_skillsets import SKILLSET_HANDLERS
from skillrelay_registry.dashboard.views_sources import SOURCE_HANDLERS
from skillrelay_registry.dashboard.views_workers import WORKER_HANDLERS
from skillrelay_registry.errors import RegistryError

STATIC = Path(__file__).parent / "static"

__all__ = ["dashboard_router"]


def dashboard_router(settings: Settings, get_bus: Callable[[], Bus]) -> Router:
    codec = SessionCodec(settings.secret_key or "")
    secure = settings.http.registry_public_url.startswith("https://")
    revealer = Revealer(RevealCodec(settings.secret_key or ""))
    return Router(
        PREFIX,
        route_handlers=[
            home,
            sign_in_page,
            sign_in_handler(codec),
            sign_out_handler(codec),
            *SKILLSET_HANDLERS,
            *SOURCE_HANDLERS,
            *INTEGRATION_HANDLERS,
            *WORKER_HANDLERS,
            *SEARCH_HANDLERS,
            audit_stream_handler(get_bus),
            create_static_files_router("/static", directories=[STATIC], name="dashboard:static"),
        ],
        dependencies={
            "service": Provide(provide_service, sync_to_thread=False),
            "owner_id": Provide(provide_owner_id),
            "revealer": Provide(lambda: revealer, sync_to_thread=False),
        },
        middleware=[DashboardMiddleware(codec, secure_cookie=secure)],
        before_request=csrf_guard,
        exception_handlers={SignInRequired: sign_in_redirect, RegistryError: registry_error_page},
        include_in_schema=False,
    )
