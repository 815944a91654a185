"""Refuse, before any decoding, what no real request holds: JSON nested deeper than
``MAX_JSON_DEPTH``, a body that is not UTF-8, and two ``Authorization`` headers (which one would count
is up to each layer that reads it: the request is ambiguous, so it is refused)."""

from __future__ import annotations

from typing import Any

from litestar import Request

from skillrelay_common.json_limits import MAX_JSON_DEPTH, is_utf8, json_depth
from skillrelay_registry.errors import InvalidInput


async def refuse_deep_json(request: Request[Any, Any, Any]) -> None:
    """Litestar ``before_request`` hook (runs before the body is decoded into the handler's types)."""
    if len(request.headers.getall("authorization", [])) > 1:
        raise InvalidInput("send one Authorization header, not several")
    if request.method in {"GET", "HEAD", "OPTIONS", "DELETE"}:
        return
    body = await request.body()
    if not is_utf8(body):
        raise InvalidInput("the body is not valid UTF-8")
    if json_depth(body) > MAX_JSON_DEPTH:
        raise InvalidInput(f"JSON is nested more than {MAX_JSON_DEPTH} levels deep")
