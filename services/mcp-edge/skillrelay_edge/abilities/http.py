"""``http`` abilities: send the arguments as JSON to the owner's URL (SSRF-guarded, IP pinned, no
redirects, bounded time and size) and map the answer to an MCP result."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from skillrelay_common.outbound import (
    BodyTooLarge,
    OutboundClient,
    OutboundError,
    RequestShape,
    Response,
    TargetCache,
    encode_query,
)
from skillrelay_common.schemas.abilities import HttpHandler
from skillrelay_common.ssrf import TargetRefused
from skillrelay_edge.calls.context import INTERNAL_ERROR, AbilityError, CallContext

MAX_RESPONSE_BYTES = 1024 * 1024
# Handlers whose request shape is prepared (checked and encoded once, not per call); past the bound
# the table starts over (a handler object lives as long as its skillset snapshot).
_MAX_SHAPES = 4096
_decoder = msgspec.json.Decoder()


class HttpRunner:
    def __init__(self, *, allow_private_targets: bool, client: OutboundClient | None = None) -> None:
        self.client = client or OutboundClient(TargetCache(allow_private=allow_private_targets))
        self._shapes: dict[int, tuple[HttpHandler, RequestShape]] = {}

    async def aclose(self) -> None:
        await self.client.aclose()

    async def run(self, ctx: CallContext, handler: Any, arguments: dict[str, Any]) -> dict[str, Any]:
        assert isinstance(handler, HttpHandler)
        try:
            shape = self._shape(handler)
        except TargetRefused as exc:
            raise AbilityError(f"HTTP ability refused: {exc}") from None
        if handler.method in {"GET", "DELETE"}:
            body, query = None, encode_query(_query(arguments))
        else:
            body, query = msgspec.json.encode(arguments), None
        response = await send_for_call(
            self.client,
            ctx,
            shape,
            body=body,
            query=query,
            timeout_ms=handler.timeout_ms,
            what="HTTP ability",
        )
        if not 200 <= response.status < 300:
            snippet = response.body[:500].decode(errors="replace")
            raise AbilityError(f"HTTP ability answered {response.status}: {snippet}")
        content_type = (response.header(b"content-type") or b"").decode("latin-1")
        return to_result(ctx, content_type, response.body)

    def _shape(self, handler: HttpHandler) -> RequestShape:
        known = self._shapes.get(id(handler))
        if known is not None and known[0] is handler:
            return known[1]
        headers = dict(handler.headers)
        headers["Accept"] = "application/json, */*"
        if handler.method not in {"GET", "DELETE"}:
            headers["Content-Type"] = "application/json"
        shape = RequestShape(handler.method, handler.url, headers)
        if len(self._shapes) >= _MAX_SHAPES:
            self._shapes.clear()
        self._shapes[id(handler)] = (handler, shape)
        return shape


async def send_for_call(
    client: OutboundClient,
    ctx: CallContext,
    shape: RequestShape,
    *,
    body: bytes | None,
    query: str | None,
    timeout_ms: int,
    what: str,
) -> Response:
    """Send one request for a call: the client's cancellation interrupts it where it waits (no task
    racing the call), and every failure becomes an ``AbilityError`` naming ``what`` (safe to show)."""
    interrupt = _Interrupt(asyncio.current_task())
    ctx.on_cancel(interrupt)
    try:
        return await client.send(
            shape, body=body, query=query, timeout=timeout_ms / 1000, max_body=MAX_RESPONSE_BYTES
        )
    except asyncio.CancelledError:
        if not interrupt.fired:
            raise
        interrupt.uncancel()
        raise AbilityError("cancelled by the client", INTERNAL_ERROR) from None
    except TargetRefused as exc:
        raise AbilityError(f"{what} refused: {exc}") from None
    except TimeoutError:
        raise AbilityError(f"{what} timed out after {timeout_ms} ms") from None
    except BodyTooLarge:
        raise AbilityError(f"{what} answer is larger than {MAX_RESPONSE_BYTES} bytes") from None
    except OutboundError as exc:
        raise AbilityError(f"{what} failed: {exc}") from None
    finally:
        interrupt.active = False


class _Interrupt:
    """Cancels the task running the call if the client cancels while the call is outbound."""

    __slots__ = ("active", "fired", "task")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.active = True
        self.fired = False

    def __call__(self) -> None:
        if self.active and self.task is not None and not self.fired:
            self.fired = True
            self.task.cancel()

    def uncancel(self) -> None:
        if self.task is not None:
            self.task.uncancel()


def _query(arguments: dict[str, Any]) -> dict[str, str]:
    return {
        key: value if isinstance(value, str) else msgspec.json.encode(value).decode()
        for key, value in arguments.items()
    }


def to_result(ctx: CallContext, content_type: str, body: bytes) -> dict[str, Any]:
    """An HTTP answer as the MCP result of ``ctx.method`` (JSON that already is one is kept)."""
    is_json = "json" in content_type.lower()
    parsed: Any = None
    if is_json:
        try:
            parsed = _decoder.decode(body)
        except msgspec.DecodeError:
            is_json = False
    text = body.decode(errors="replace")
    if ctx.method == "tools/call":
        if is_json and isinstance(parsed, dict) and isinstance(parsed.get("content"), list):
            return parsed  # already an MCP tool result
        result: dict[str, Any] = {"content": [{"type": "text", "text": text}]}
        output_schema = getattr(ctx.target, "output_schema", None)
        if is_json and output_schema is not None and isinstance(parsed, dict):
            result["structuredContent"] = parsed
        return result
    if ctx.method == "resources/read":
        if is_json and isinstance(parsed, dict) and isinstance(parsed.get("contents"), list):
            return parsed
        mime = content_type.split(";", 1)[0].strip() or "text/plain"
        return {"contents": [{"uri": ctx.name, "mimeType": mime, "text": text}]}
    expected = "messages" if ctx.method == "prompts/get" else "completion"
    if is_json and isinstance(parsed, dict) and expected in parsed:
        return parsed
    raise AbilityError(f"HTTP ability answer has no {expected!r} field")
