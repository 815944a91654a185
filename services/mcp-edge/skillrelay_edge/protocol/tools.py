"""tools/list and tools/call."""

from __future__ import annotations

from typing import Any

import msgspec

from skillrelay_edge.calls.context import INVALID_PARAMS, AbilityError
from skillrelay_edge.protocol.calls import make_context, run_handler
from skillrelay_edge.protocol.pagination import page
from skillrelay_edge.protocol.scope import RequestScope, Services
from skillrelay_edge.transport.jsonrpc import RpcError


async def list_tools(scope: RequestScope, services: Services, params: dict[str, Any]) -> dict[str, Any]:
    catalog = scope.catalog
    return page(catalog.tool_entries, params, "tools", catalog.snapshot.skillset.revision)


def _error_result(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}


async def call_tool(scope: RequestScope, services: Services, params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("name")
    if not isinstance(name, str):
        raise RpcError(INVALID_PARAMS, "Invalid params: name is required")
    tool = scope.catalog.tools.get(name)
    if tool is None:
        raise RpcError(INVALID_PARAMS, f"Unknown tool: {name}")
    arguments = params.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise RpcError(INVALID_PARAMS, "Invalid params: arguments must be an object")
    # 2025-11-25: argument validation failures are tool execution errors the model can correct.
    problem = scope.catalog.validate_arguments(tool, arguments)
    if problem is not None:
        return _error_result(problem)
    ctx = make_context(scope, "tools/call", name, tool, params)
    try:
        result = await run_handler(services, ctx, tool.handler, arguments)
    except AbilityError as exc:
        return _error_result(exc.message)
    if tool.output_schema is not None and "structuredContent" in result and not result.get("content"):
        # Older clients only read content: mirror the structured answer as text.
        result = {
            **result,
            "content": [{"type": "text", "text": msgspec.json.encode(result["structuredContent"]).decode()}],
        }
    return result
