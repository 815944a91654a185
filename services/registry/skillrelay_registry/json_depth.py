"""Refuse JSON nested deeper than any real request needs, before the decoder recurses into it.

Decoding thousands of nested arrays ends in a ``RecursionError``; besides being a client error, on
CPython 3.11 a caught ``RecursionError`` can leave the interpreter's AST recursion counter off, so a
later ``compile()`` (Jinja templates, lazy imports) fails. Counting brackets first avoids both.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request

from skillrelay_registry.errors import InvalidInput

MAX_JSON_DEPTH = 128
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in ``body`` (brackets inside strings do not count)."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return 0  # cannot be too deep: skip the scan for ordinary bodies
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b"", body)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


async def refuse_deep_json(request: Request[Any, Any, Any]) -> None:
    """Litestar ``before_request`` hook (runs before the body is decoded into the handler's types)."""
    if request.method in {"GET", "HEAD", "OPTIONS", "DELETE"}:
        return
    if json_depth(await request.body()) > MAX_JSON_DEPTH:
        raise InvalidInput(f"JSON is nested more than {MAX_JSON_DEPTH} levels deep")
