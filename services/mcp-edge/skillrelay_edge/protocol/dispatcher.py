"""Routes a JSON-RPC request to its method handler and turns failures into JSON-RPC errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from skillrelay_edge.calls.context import INTERNAL_ERROR, METHOD_NOT_FOUND
from skillrelay_edge.protocol import completion, lifecycle, prompts, resources, tools
from skillrelay_edge.protocol.scope import RequestScope, Services
from skillrelay_edge.transport import jsonrpc
from skillrelay_edge.transport.jsonrpc import RpcError

MethodHandler = Callable[[RequestScope, Services, dict[str, Any]], Awaitable[dict[str, Any]]]

_log = structlog.get_logger("skillrelay.edge.dispatcher")

# The methods on an integration's catalog, alike in both eras (``modern.dispatch`` serves these too).
CATALOG_METHODS: dict[str, MethodHandler] = {
    "tools/list": tools.list_tools,
    "tools/call": tools.call_tool,
    "resources/list": resources.list_resources,
    "resources/templates/list": resources.list_templates,
    "resources/read": resources.read_resource,
    "prompts/list": prompts.list_prompts,
    "prompts/get": prompts.get_prompt,
    "completion/complete": completion.complete,
}
# The session era's: the catalog's, and what a session has (a ping, its log level, its subscriptions).
METHODS: dict[str, MethodHandler] = {
    **CATALOG_METHODS,
    "ping": lifecycle.ping,
    "logging/setLevel": lifecycle.set_level,
    "resources/subscribe": resources.subscribe,
    "resources/unsubscribe": resources.unsubscribe,
}


class Dispatcher:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def answer(self, scope: RequestScope, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """The JSON-RPC response message for one request (never raises for client input)."""
        request_id = scope.request_id
        if method == "initialize":
            return jsonrpc.result(request_id, lifecycle.initialize_result(scope, self.services, params))
        handler = METHODS.get(method)
        if handler is None:
            return jsonrpc.error(request_id, METHOD_NOT_FOUND, f"Method not found: {method}")
        try:
            return jsonrpc.result(request_id, await handler(scope, self.services, params))
        except RpcError as exc:
            return jsonrpc.error(request_id, exc.code, exc.message, exc.data)
        except Exception:
            _log.exception("mcp.method.failed", method=method)
            return jsonrpc.error(request_id, INTERNAL_ERROR, "Internal error")
