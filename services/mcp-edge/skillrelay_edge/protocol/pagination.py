"""Opaque cursors over a list: base64 of the next offset, tied to the list's revision."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from skillrelay_edge.calls.context import INVALID_PARAMS
from skillrelay_edge.transport.jsonrpc import RpcError

PAGE_SIZE = 500


def page(items: list[dict[str, Any]], params: dict[str, Any], key: str, revision: int) -> dict[str, Any]:
    cursor = params.get("cursor")
    start = 0
    if cursor is not None:
        start = _decode(cursor, revision)
    end = start + PAGE_SIZE
    result: dict[str, Any] = {key: items[start:end] if (start or end < len(items)) else items}
    if end < len(items):
        result["nextCursor"] = base64.urlsafe_b64encode(f"{revision}:{end}".encode()).decode()
    return result


def _decode(cursor: Any, revision: int) -> int:
    try:
        text = base64.urlsafe_b64decode(str(cursor).encode()).decode()
        cursor_revision, offset = (int(part) for part in text.split(":", 1))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise RpcError(INVALID_PARAMS, "Invalid cursor") from None
    if cursor_revision != revision or offset < 0:
        raise RpcError(INVALID_PARAMS, "Invalid cursor: the list changed; start again without a cursor")
    return offset
