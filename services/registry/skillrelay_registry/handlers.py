"""NATS entry points of the registry service (FastStream subscribers, ``skillrelay_common.broker``):
decode, call the service, encode. Nothing else."""

from __future__ import annotations

from typing import Any

from skillrelay_common.broker import Answers
from skillrelay_common.schemas.base import NotFound, Ok
from skillrelay_common.schemas.registry import (
    GetOAuthConnection,
    IntegrationSnapshot,
    OAuthConnectionSecret,
    RefreshSource,
    ResolveIntegration,
    SourceResourceUpdated,
)
from skillrelay_common.subjects import (
    REGISTRY_INTEGRATION_RESOLVE,
    REGISTRY_OAUTH_CONNECTION_GET,
    REGISTRY_PING,
    REGISTRY_SOURCE_REFRESH,
    REGISTRY_SOURCE_RESOURCE_UPDATED,
    Endpoint,
)
from skillrelay_registry.service import RegistryService

# Every endpoint this service answers (the contract test checks each subject has exactly one owner).
SERVED_ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (
    REGISTRY_PING,
    REGISTRY_INTEGRATION_RESOLVE,
    REGISTRY_OAUTH_CONNECTION_GET,
    REGISTRY_SOURCE_REFRESH,
    REGISTRY_SOURCE_RESOURCE_UPDATED,
)


def register_handlers(answers: Answers, service: RegistryService) -> None:
    answers.serve_ping(REGISTRY_PING)

    async def resolve_integration(request: ResolveIntegration) -> IntegrationSnapshot | NotFound:
        snapshot = await service.resolve_integration(request.integration_id)
        return snapshot if snapshot is not None else NotFound(what="integration")

    async def get_oauth_connection(request: GetOAuthConnection) -> OAuthConnectionSecret | NotFound:
        connection = await service.oauth_connection_secret(request.connection_id)
        return connection if connection is not None else NotFound(what="oauthconnection")

    async def refresh_source(request: RefreshSource) -> Ok | NotFound:
        # Answered at once: the upstream is read in the background (the edge does not wait for it).
        if not await service.source_exists(request.source_id):
            return NotFound(what="source")
        service.refresh_soon(request.source_id)
        return Ok()

    async def source_resource_updated(request: SourceResourceUpdated) -> Ok | NotFound:
        found = await service.resource_updated(request.source_id, request.uri)
        return Ok() if found else NotFound(what="source resource")

    answers.serve(REGISTRY_INTEGRATION_RESOLVE, resolve_integration)
    answers.serve(REGISTRY_SOURCE_RESOURCE_UPDATED, source_resource_updated)
    answers.serve(REGISTRY_SOURCE_REFRESH, refresh_source)
    answers.serve(REGISTRY_OAUTH_CONNECTION_GET, get_oauth_connection)
