"""``Mcp-Method`` / ``Mcp-Name`` (SEP-2243): the HTTP headers that mirror the body must match it, so
an intermediary routing on a header and this server acting on the body never disagree."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from skillrelay_edge.modern.meta import HEADER_MISMATCH, ModernError

# Which params field ``Mcp-Name`` mirrors, per method.
NAME_FIELD = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_SENTINEL = re.compile(r"^=\?base64\?(.*)\?=$", re.DOTALL)
# RFC 9110 field values: visible ASCII, space and horizontal tab.
_FIELD_VALUE = re.compile(r"^[\x20-\x7e\t]*$")


def decode_header_value(raw: str) -> str:
    """A header value as the body would hold it: surrounding whitespace dropped (RFC 9110 OWS), the
    ``=?base64?…?=`` sentinel decoded. Raises ``ValueError`` for a malformed value."""
    value = raw.strip(" \t")
    if not _FIELD_VALUE.match(value):
        raise ValueError("contains characters a header value may not hold")
    found = _SENTINEL.match(value)
    if found is None:
        return value
    encoded = found.group(1)
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("is not valid base64 of UTF-8") from None


def check_standard_headers(headers: Mapping[str, str], method: str, params: dict[str, Any]) -> None:
    """Raise ``ModernError(-32020)`` unless the headers mirror the request (names are lower-case)."""
    header_method = headers.get("mcp-method")
    if header_method is None:
        raise ModernError(HEADER_MISMATCH, "Header mismatch: the Mcp-Method header is required")
    if header_method.strip(" \t") != method:
        raise ModernError(
            HEADER_MISMATCH,
            f"Header mismatch: Mcp-Method {header_method[:80]!r} does not match the body's method "
            f"{method[:80]!r}",
        )
    field = NAME_FIELD.get(method)
    if field is None:
        return
    body_value = params.get(field)
    raw = headers.get("mcp-name")
    if raw is None:
        if body_value is None:
            return  # the body is invalid anyway: the method says so with Invalid params
        raise ModernError(HEADER_MISMATCH, f"Header mismatch: the Mcp-Name header is required for {method}")
    try:
        value = decode_header_value(raw)
    except ValueError as exc:
        raise ModernError(HEADER_MISMATCH, f"Header mismatch: Mcp-Name {exc}") from None
    if value != body_value:
        raise ModernError(
            HEADER_MISMATCH,
            f"Header mismatch: Mcp-Name does not match the body's params.{field}",
        )
