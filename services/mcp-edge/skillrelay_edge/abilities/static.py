"""``static`` abilities: fixed content blocks (text, image, audio, resource_link, embedded resource)
with ``{{argument}}`` substitution in their text fields."""

from __future__ import annotations

from typing import Any

from skillrelay_common.schemas.abilities import StaticHandler
from skillrelay_edge.abilities.substitute import substitute_block
from skillrelay_edge.calls.context import CallContext


class StaticRunner:
    async def run(self, ctx: CallContext, handler: Any, arguments: dict[str, Any]) -> dict[str, Any]:
        assert isinstance(handler, StaticHandler)
        content = [substitute_block(block, arguments) for block in handler.content]
        result: dict[str, Any] = {"content": content}
        if handler.is_error:
            result["isError"] = True
        if handler.structured_content is not None:
            result["structuredContent"] = handler.structured_content
        return result
