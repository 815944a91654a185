"""prompts/list and prompts/get."""

from __future__ import annotations

from typing import Any

from skillrelay_common.uris import is_absolute_uri
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
    messages = []
    for index, message in enumerate(prompt.messages):
        content = substitute_block(message.content, arguments)
        _check_substituted_uri(content, message.content, index)
        messages.append({"role": message.role, "content": content})
    result: dict[str, Any] = {"messages": messages}
    if prompt.description:
        result["description"] = prompt.description
    return result


def _check_substituted_uri(content: dict[str, Any], template: dict[str, Any], index: int) -> None:
    """A URI the registry stored with an ``{{argument}}`` in it is only a URI once substituted: the
    arguments that fill it must make an absolute URI, or the request is refused (-32602)."""
    for holder, stored in ((content, template), (content.get("resource"), template.get("resource"))):
        if not isinstance(holder, dict) or not isinstance(stored, dict):
            continue
        value, before = holder.get("uri"), stored.get("uri")
        if not isinstance(value, str) or value == before:
            continue  # unchanged: the registry checked it when it was stored
        if not is_absolute_uri(value):
            shown = value if len(value) <= 200 else value[:200] + "…"
            raise RpcError(
                INVALID_PARAMS,
                f"Invalid params: the arguments make messages[{index}]'s URI {shown!r}, "
                "which is not an absolute URI",
            )
