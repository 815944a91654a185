"""``http`` abilities: send the arguments as JSON to the owner's URL (SSRF-guarded, IP pinned, no
redirects, bounded time and size) and map the answer to an MCP result."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import msgspec

from skillrelay_common.schemas.abilities import HttpHandler
from skillrelay_common.ssrf import TargetRefused, resolve_target
from skillrelay_edge.calls.context import INTERNAL_ERROR, AbilityError, CallContext

MAX_RESPONSE_BYTES = 1024 * 1024
# Set by the edge (pinned target, framing): an owner's handler headers may not override them.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive"}
)
_decoder = msgspec.json.Decoder()


class HttpRunner:
    def __init__(self, *, allow_private_targets: bool, client: httpx.AsyncClient | None = None) -> None:
        self._allow_private = allow_private_targets
        self._client = client or httpx.AsyncClient(follow_redirects=False, trust_env=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def run(self, ctx: CallContext, handler: Any, arguments: dict[str, Any]) -> dict[str, Any]:
        assert isinstance(handler, HttpHandler)
        call = asyncio.ensure_future(self._call(ctx, handler, arguments))
        cancelled = asyncio.ensure_future(ctx.cancelled.wait())
        try:
            await asyncio.wait({call, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
        if not call.done():
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
            raise AbilityError("cancelled by the client", INTERNAL_ERROR)
        return call.result()

    async def _call(
        self, ctx: CallContext, handler: HttpHandler, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            target = await resolve_target(handler.url, allow_private=self._allow_private)
        except TargetRefused as exc:
            raise AbilityError(f"HTTP ability refused: {exc}") from None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _RESERVED_HEADERS}
        headers.update({"Host": target.host_header, "Accept": "application/json, */*"})
        extensions: dict[str, Any] = {"sni_hostname": target.host} if target.scheme == "https" else {}
        send_body = handler.method not in {"GET", "DELETE"}
        if send_body:
            headers["Content-Type"] = "application/json"
        timeout = handler.timeout_ms / 1000
        try:
            async with asyncio.timeout(timeout):
                request = self._client.build_request(
                    handler.method,
                    target.connect_url,
                    headers=headers,
                    content=msgspec.json.encode(arguments) if send_body else None,
                    params=None if send_body else _query(arguments),
                    extensions=extensions,
                    timeout=timeout,
                )
                response = await self._client.send(request, stream=True)
                try:
                    body = await _read_limited(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise AbilityError(f"HTTP ability timed out after {handler.timeout_ms} ms") from None
        except httpx.HTTPError as exc:
            raise AbilityError(f"HTTP ability failed: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            snippet = body[:500].decode(errors="replace")
            raise AbilityError(f"HTTP ability answered {response.status_code}: {snippet}")
        return _to_result(ctx, response.headers.get("content-type", ""), body)


def _query(arguments: dict[str, Any]) -> dict[str, str]:
    return {
        key: value if isinstance(value, str) else msgspec.json.encode(value).decode()
        for key, value in arguments.items()
    }


async def _read_limited(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise AbilityError(f"HTTP ability answer is larger than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _to_result(ctx: CallContext, content_type: str, body: bytes) -> dict[str, Any]:
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
