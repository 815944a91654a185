"""The registry's REST API (``/api/v1``): thin controllers that decode, call ``RegistryService``, encode."""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide

from skillrelay_registry.api.blueprints import BlueprintController
from skillrelay_registry.api.common import owner_dependencies
from skillrelay_registry.api.contents import content_controllers
from skillrelay_registry.api.integrations import IntegrationController
from skillrelay_registry.api.oauth_connections import OAuthConnectionController
from skillrelay_registry.api.sessions import end_idle_sessions
from skillrelay_registry.api.skillsets import SkillsetController
from skillrelay_registry.api.sources import SourceController
from skillrelay_registry.api.usage import integration_usage, provide_usage
from skillrelay_registry.api.users import UserController
from skillrelay_registry.api.worker_credentials import WorkerCredentialController


def api_router() -> Router:
    owned = Router(
        "/",
        route_handlers=[
            BlueprintController,
            SkillsetController,
            *content_controllers(),
            SourceController,
            OAuthConnectionController,
            IntegrationController,
            WorkerCredentialController,
            integration_usage,
            end_idle_sessions,
        ],
        dependencies={**owner_dependencies(), "usage": Provide(provide_usage, sync_to_thread=False)},
        security=[{"apiKey": []}],
    )
    return Router("/api/v1", route_handlers=[UserController, owned])
