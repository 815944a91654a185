"""What the authorization server asks the registry over NATS: integrations and OAuth connections."""

from __future__ import annotations

from skillrelay_auth.oauth.errors import registry_unavailable
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.base import NotFound
from skillrelay_common.schemas.registry import (
    GetOAuthConnection,
    IntegrationInfo,
    IntegrationSnapshot,
    OAuthConnectionSecret,
    ResolveIntegration,
)
from skillrelay_common.subjects import REGISTRY_INTEGRATION_RESOLVE, REGISTRY_OAUTH_CONNECTION_GET


class BusRegistryLookup:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def integration(self, integration_id: str) -> IntegrationInfo | None:
        reply = await self._bus.request(
            REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id=integration_id)
        )
        if isinstance(reply, IntegrationSnapshot):
            return reply.integration
        if isinstance(reply, NotFound):
            return None
        raise registry_unavailable()

    async def connection(self, connection_id: str) -> OAuthConnectionSecret | None:
        reply = await self._bus.request(
            REGISTRY_OAUTH_CONNECTION_GET, GetOAuthConnection(connection_id=connection_id)
        )
        if isinstance(reply, OAuthConnectionSecret):
            return reply
        if isinstance(reply, NotFound):
            return None
        raise registry_unavailable()
