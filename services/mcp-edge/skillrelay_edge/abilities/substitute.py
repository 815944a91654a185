"""Safe ``{{argument}}`` substitution: one regex pass over string fields, no expressions, no code, and
no recursion (a substituted value is never scanned again)."""

from __future__ import annotations

import re
from typing import Any

import msgspec

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
# Fields of content blocks that hold user-facing text; data/blob/mimeType are never touched.
TEXT_FIELDS = frozenset({"text", "uri", "name", "title", "description"})


def _value(arguments: dict[str, Any], name: str) -> str:
    value = arguments.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def substitute_text(text: str, arguments: dict[str, Any]) -> str:
    if "{{" not in text:
        return text
    return _PLACEHOLDER.sub(lambda found: _value(arguments, found.group(1)), text)


def substitute_block(block: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
    """A copy of a content block with placeholders filled in its text fields (and in an embedded
    resource's text fields)."""
    out: dict[str, Any] = {}
    for key, value in block.items():
        if key in TEXT_FIELDS and isinstance(value, str):
            out[key] = substitute_text(value, arguments)
        elif key == "resource" and isinstance(value, dict):
            out[key] = {
                k: substitute_text(v, arguments) if k in TEXT_FIELDS and isinstance(v, str) else v
                for k, v in value.items()
            }
        else:
            out[key] = value
    return out
