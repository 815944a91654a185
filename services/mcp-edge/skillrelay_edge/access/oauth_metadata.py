"""OAuth 2.0 Protected Resource Metadata (RFC 9728) for each integration's MCP endpoint.

The document names the integration's own authorization server (issuer ``{auth}/oauth/{id}``), which is
where an MCP client goes after the edge's 401 points it here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from skillrelay_common.http import ApiError
from skillrelay_common.ids import MCP_SERVER, has_prefix
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_common.settings import Settings
from skillrelay_edge.access.credentials import mcp_endpoint_url, oauth_issuer

METADATA_PATH = "/.well-known/oauth-protected-resource/api/v1/integration/mcpserver/{integration_id:str}/mcp"

# Resolves an integration id to its info (None when unknown); lets the route answer 404 for integrations
# that do not exist or have no OAuth connection.
IntegrationLookup = Callable[[str], Awaitable[IntegrationInfo | None]]


def protected_resource_metadata(settings: Settings, integration_id: str) -> dict[str, Any]:
    return {
        "resource": mcp_endpoint_url(settings, integration_id),
        "authorization_servers": [oauth_issuer(settings, integration_id)],
        "bearer_methods_supported": ["header"],
        "resource_name": f"Skillrelay MCP server {integration_id}",
    }


def protected_resource_routes(
    settings: Settings, lookup: IntegrationLookup | None = None
) -> list[HTTPRouteHandler]:
    @get(METADATA_PATH, include_in_schema=False)
    async def protected_resource(integration_id: FromPath[str]) -> Response[dict[str, Any]]:
        if not has_prefix(integration_id, MCP_SERVER):
            raise ApiError(404, "not_found", "no such MCP server")
        if lookup is not None:
            integration = await lookup(integration_id)
            if integration is None or not integration.o_auth_connection_id:
                raise ApiError(404, "not_found", "this MCP server has no OAuth authorization server")
        return Response(
            protected_resource_metadata(settings, integration_id),
            headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
        )

    return [protected_resource]
