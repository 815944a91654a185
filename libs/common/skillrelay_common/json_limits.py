"""Checks on a raw JSON body made before any decoder sees it (registry and edge alike).

Decoding thousands of nested arrays ends in a ``RecursionError``; besides being a client error, on
CPython 3.11 a caught ``RecursionError`` can leave the interpreter's AST recursion counter off, so a
later ``compile()`` (Jinja templates, lazy imports) fails. Counting brackets first avoids both. A body
that is not UTF-8 makes msgspec raise ``UnicodeDecodeError`` rather than its ``DecodeError``.
"""

from __future__ import annotations

import re

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


def is_utf8(body: bytes) -> bool:
    if body.isascii():
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
