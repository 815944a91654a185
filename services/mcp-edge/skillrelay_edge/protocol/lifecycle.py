"""initialize, ping, logging/setLevel."""

from __future__ import annotations

from typing import Any

import msgspec

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


# What is kept of the client's ``clientInfo`` (shown to the owner beside each session): a few short
# strings, whatever the client sent.
CLIENT_INFO_KEYS = ("name", "title", "version")
MAX_CLIENT_INFO_CHARS = 128


def bounded_client_info(client_info: Any) -> dict[str, str]:
    if not isinstance(client_info, dict):
        return {}
    return {
        key: value[:MAX_CLIENT_INFO_CHARS]
        for key in CLIENT_INFO_KEYS
        if isinstance(value := client_info.get(key), str) and value
    }


# What a session keeps of the client's initialize (capabilities + bounded clientInfo), as JSON. Real
# clients send well under 2 KB; the session's whole state (with subscriptions) is capped at 64 KB by
# the sessions service, and anything near NATS's 1 MB could not even reach it.
MAX_CLIENT_STATE_BYTES = 16 * 1024
_encoder = msgspec.json.Encoder()


def client_state_problem(state: dict[str, Any]) -> str | None:
    size = len(_encoder.encode(state))
    if size > MAX_CLIENT_STATE_BYTES:
        return (
            f"capabilities take {size} bytes; a session keeps at most {MAX_CLIENT_STATE_BYTES} bytes of them"
        )
    return None


def session_state_from_initialize(params: dict[str, Any]) -> dict[str, Any]:
    capabilities = params.get("capabilities")
    return {
        "clientCapabilities": capabilities if isinstance(capabilities, dict) else {},
        "clientInfo": bounded_client_info(params.get("clientInfo")),
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
