"""completion/complete: suggestions for prompt arguments and resource-template variables.

Static suggestions come from the definition's ``meta.completions.<argument>`` (a list of strings,
filtered by prefix); a definition served by a worker or http handler is asked instead (an http
handler gets the request's params as JSON and answers ``{"completion": {...}}``)."""

from __future__ import annotations

from typing import Any

from skillrelay_edge.calls.context import INVALID_PARAMS, AbilityError
from skillrelay_edge.protocol.calls import make_context, run_handler
from skillrelay_edge.protocol.scope import RequestScope, Services
from skillrelay_edge.transport.jsonrpc import RpcError

MAX_VALUES = 100


def _empty() -> dict[str, Any]:
    return {"completion": {"values": [], "total": 0, "hasMore": False}}


async def complete(scope: RequestScope, services: Services, params: dict[str, Any]) -> dict[str, Any]:
    ref = params.get("ref")
    argument = params.get("argument")
    if (
        not isinstance(ref, dict)
        or not isinstance(argument, dict)
        or not isinstance(argument.get("name"), str)
    ):
        raise RpcError(INVALID_PARAMS, "Invalid params: ref and argument.name are required")
    catalog = scope.catalog
    target: Any
    if ref.get("type") == "ref/prompt":
        target = catalog.prompts.get(str(ref.get("name")))
        if target is None:
            raise RpcError(INVALID_PARAMS, f"Unknown prompt: {ref.get('name')}")
        label = target.name
    elif ref.get("type") == "ref/resource":
        uri = str(ref.get("uri"))
        target = next((t.resource for t in catalog.templates if t.resource.uri_template == uri), None)
        if target is None:
            target = catalog.resources.get(uri)
        if target is None:
            raise RpcError(INVALID_PARAMS, f"Unknown resource: {uri}")
        label = uri
    else:
        raise RpcError(INVALID_PARAMS, "Invalid params: ref.type must be ref/prompt or ref/resource")
    if target.handler is not None:
        ctx = make_context(scope, "completion/complete", label, target, params)
        try:
            return await run_handler(services, ctx, target.handler, params)
        except AbilityError:
            return _empty()
    suggestions = target.meta.get("completions", {}) if isinstance(target.meta, dict) else {}
    options = suggestions.get(argument["name"]) if isinstance(suggestions, dict) else None
    if not isinstance(options, list):
        return _empty()
    prefix = str(argument.get("value", ""))
    values = [o for o in options if isinstance(o, str) and o.startswith(prefix)]
    return {
        "completion": {
            "values": values[:MAX_VALUES],
            "total": len(values),
            "hasMore": len(values) > MAX_VALUES,
        }
    }
