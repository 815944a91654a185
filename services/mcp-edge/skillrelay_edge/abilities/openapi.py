"""``openapi`` abilities: tools made from an OpenAPI document's operations (a skillset source). The
arguments fill the operation's path, query and headers, ``body`` goes as JSON, and the request is sent
to the source's base URL with the source's own headers through the SSRF-guarded outbound client."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

import msgspec

from skillrelay_common.metrics import SOURCE_CALL_SECONDS, SOURCE_CALLS
from skillrelay_common.outbound import OutboundClient, RequestShape
from skillrelay_common.schemas.abilities import OpenApiHandler
from skillrelay_common.ssrf import TargetRefused
from skillrelay_edge.abilities.http import send_for_call, to_result
from skillrelay_edge.calls.context import AbilityError, CallContext

_PATH_PARAMETER = re.compile(r"\{([^{}/]+)\}")


class OpenApiRunner:
    def __init__(self, client: OutboundClient) -> None:
        self.client = client  # shared with the http runner: one pool of upstream connections

    async def run(self, ctx: CallContext, handler: Any, arguments: dict[str, Any]) -> dict[str, Any]:
        assert isinstance(handler, OpenApiHandler)
        source = ctx.source
        if source is None or not source.base_url:
            raise AbilityError(f"{handler.operation_id}: its source is not available")
        what = f"{source.name or 'OpenAPI source'} ({handler.operation_id})"
        headers = {
            parameter.name: _text(arguments[parameter.name])
            for parameter in handler.parameters
            if parameter.location == "header" and arguments.get(parameter.name) is not None
        }
        headers.update(source.headers)  # the source's credentials win over any argument
        headers["Accept"] = "application/json, */*"
        body = None
        if handler.has_body and "body" in arguments:
            body = msgspec.json.encode(arguments["body"])
            headers["Content-Type"] = "application/json"
        url = source.base_url.rstrip("/") + _fill_path(handler.path, arguments)
        try:
            shape = RequestShape(handler.method, url, headers)
        except TargetRefused as exc:
            raise AbilityError(f"{what} refused: {exc}") from None
        started, outcome = time.perf_counter(), "unreachable"  # no answer (timeout, refused, cancelled)
        try:
            response = await send_for_call(
                self.client,
                ctx,
                shape,
                body=body,
                query=_query(handler, arguments),
                timeout_ms=source.timeout_ms,
                what=what,
            )
            outcome = "ok" if 200 <= response.status < 300 else "error"
        finally:
            # The same metrics as calls forwarded to an mcp source's upstream.
            SOURCE_CALLS.labels(source.id, ctx.method, outcome).inc()
            SOURCE_CALL_SECONDS.labels(source.id).observe(time.perf_counter() - started)
        if outcome == "error":
            snippet = response.body[:500].decode(errors="replace")
            raise AbilityError(f"{what} answered HTTP {response.status}: {snippet}")
        content_type = (response.header(b"content-type") or b"").decode("latin-1")
        if not response.body:
            return {"content": [{"type": "text", "text": f"HTTP {response.status}"}]}
        return to_result(ctx, content_type, response.body)


def _fill_path(path: str, arguments: dict[str, Any]) -> str:
    """The path with each ``{name}`` replaced by its argument, percent-encoded as one segment."""

    def value(found: re.Match[str]) -> str:
        name = found.group(1)
        if arguments.get(name) is None:
            raise AbilityError(f"argument {name!r} is required (it is part of the URL path)")
        return quote(_text(arguments[name]), safe="")

    return _PATH_PARAMETER.sub(value, path)


def _query(handler: OpenApiHandler, arguments: dict[str, Any]) -> str | None:
    """The query parameters given, an array as the parameter repeated (OpenAPI's default form)."""
    pairs: list[str] = []
    for parameter in handler.parameters:
        value = arguments.get(parameter.name)
        if parameter.location != "query" or value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            pairs.append(f"{quote(parameter.name, safe='')}={quote(_text(item), safe='')}")
    return "&".join(pairs) or None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()  # numbers, booleans (true/false), objects as JSON
