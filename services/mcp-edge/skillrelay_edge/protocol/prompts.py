"""prompts/list and prompts/get."""

from __future__ import annotations

from typing import Any

from skillrelay_edge.abilities.substitute import substitute_block
from skillrelay_edge.calls.context import INVALID_PARAMS, AbilityError
from skillrelay_edge.protocol.calls import make_context, run_handler
from skillrelay_edge.protocol.pagination import page
from skillrelay_edge.protocol.scope import RequestScope, Services
from skillrelay_edge.transport.jsonrpc import RpcError


async def list_prompts(scope: RequestScope, services: Services, params: dict[str, Any]) -> dict[str, Any]:
    catalog = scope.catalog
    return page(catalog.prompt_entries, params, "prompts", catalog.snapshot.skillset.revision)


async def get_prompt(scope: RequestScope, services: Services, params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("name")
    if not isinstance(name, str):
        raise RpcError(INVALID_PARAMS, "Invalid params: name is required")
    prompt = scope.catalog.prompts.get(name)
    if prompt is None:
        raise RpcError(INVALID_PARAMS, f"Unknown prompt: {name}")
    arguments = params.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise RpcError(INVALID_PARAMS, "Invalid params: arguments must be an object")
    missing = [a.name for a in prompt.arguments if a.required and arguments.get(a.name) in (None, "")]
    if missing:
        raise RpcError(INVALID_PARAMS, f"Missing required arguments: {', '.join(missing)}")
    if prompt.handler is not None:
        ctx = make_context(scope, "prompts/get", name, prompt, params)
        try:
            return await run_handler(services, ctx, prompt.handler, arguments)
        except AbilityError as exc:
            raise RpcError(exc.code, exc.message) from None
    result: dict[str, Any] = {
        "messages": [
            {"role": m.role, "content": substitute_block(m.content, arguments)} for m in prompt.messages
        ]
    }
    if prompt.description:
        result["description"] = prompt.description
    return result
