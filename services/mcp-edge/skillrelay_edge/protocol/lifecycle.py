"""initialize, ping, logging/setLevel."""

from __future__ import annotations

from typing import Any

from skillrelay_edge.calls.context import INVALID_PARAMS
from skillrelay_edge.protocol.scope import RequestScope, Services
from skillrelay_edge.transport.jsonrpc import RpcError
from skillrelay_edge.transport.rules import negotiate_version
from skillrelay_worker.protocol import LOG_LEVELS

# Skillsets change while sessions are open, so every family is declared with listChanged.
CAPABILITIES: dict[str, Any] = {
    "tools": {"listChanged": True},
    "resources": {"subscribe": True, "listChanged": True},
    "prompts": {"listChanged": True},
    "logging": {},
    "completions": {},
}


def initialize_result(scope: RequestScope, services: Services, params: dict[str, Any]) -> dict[str, Any]:
    catalog = scope.catalog
    result: dict[str, Any] = {
        "protocolVersion": negotiate_version(params.get("protocolVersion")),
        "capabilities": CAPABILITIES,
        "serverInfo": {
            "name": catalog.integration.name or services.server_name,
            "title": catalog.snapshot.skillset.name,
            "version": f"{services.server_version}+r{catalog.snapshot.skillset.revision}",
        },
    }
    instructions = catalog.integration.description or catalog.snapshot.skillset.description
    if instructions:
        result["instructions"] = instructions
    return result


def session_state_from_initialize(params: dict[str, Any]) -> dict[str, Any]:
    capabilities = params.get("capabilities")
    client_info = params.get("clientInfo")
    return {
        "clientCapabilities": capabilities if isinstance(capabilities, dict) else {},
        "clientInfo": client_info if isinstance(client_info, dict) else {},
    }


async def ping(scope: RequestScope, services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return {}


async def set_level(scope: RequestScope, services: Services, params: dict[str, Any]) -> dict[str, Any]:
    level = params.get("level")
    if level not in LOG_LEVELS:
        raise RpcError(INVALID_PARAMS, f"Invalid params: level must be one of {', '.join(LOG_LEVELS)}")
    if scope.session is not None:
        updated = await services.sessions.update_state(scope.session.session_id, {"logLevel": level})
        if updated is not None:
            scope.session = updated
    return {}
