"""The HTTP header side of MCP 2026-07-28 (SEP-2243) that both ends of a connection share: the header
value codec (plain ASCII, else the ``=?base64?…?=`` sentinel) and the ``Mcp-Param-{Name}`` headers a
``tools/call`` mirrors from the arguments its tool's inputSchema marks with ``x-mcp-header``.

The edge checks them on what clients send (``skillrelay_edge.modern.headers``); the upstream client
sends them to a 2026-07-28 upstream whose tool asks for them (``skillrelay_common.upstream``)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

PARAM_HEADER_PREFIX = "Mcp-Param-"
_SENTINEL = re.compile(r"^=\?base64\?(.*)\?=$", re.DOTALL)
# RFC 9110 field values: visible ASCII, space and horizontal tab.
_FIELD_VALUE = re.compile(r"^[\x20-\x7e\t]*$")

HeaderParams = list[tuple[tuple[str, ...], str]]
_annotated: dict[int, tuple[Any, HeaderParams]] = {}


def encode_header_value(value: str) -> str:
    """``value`` as a header carries it: verbatim when it is printable ASCII with no surrounding
    whitespace and does not itself look like the sentinel, else base64-wrapped."""
    if value.isascii() and value.isprintable() and value == value.strip() and not _SENTINEL.match(value):
        return value
    return "=?base64?" + base64.b64encode(value.encode()).decode("ascii") + "?="


def decode_header_value(raw: str) -> str:
    """A header value as the body would hold it: surrounding whitespace dropped (RFC 9110 OWS), the
    ``=?base64?…?=`` sentinel decoded. Raises ``ValueError`` for a malformed value."""
    if raw and raw[0] not in " =" and raw[-1] != " " and raw.isascii() and raw.isprintable():
        return raw  # the usual value: plain visible ASCII, nothing to trim or decode (no regex)
    value = raw.strip(" \t")
    if not _FIELD_VALUE.match(value):
        raise ValueError("contains characters a header value may not hold")
    found = _SENTINEL.match(value)
    if found is None:
        return value
    try:
        return base64.b64decode(found.group(1), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("is not valid base64 of UTF-8") from None


def header_params(input_schema: Any) -> HeaderParams:
    """``(property path, header name)`` of every ``x-mcp-header`` in a tool's inputSchema (through
    ``properties`` only, as the spec defines the path). Cached per schema object: catalogs keep their
    schemas for a snapshot's life, so this walk happens once per tool, not per call."""
    key = id(input_schema)
    cached = _annotated.get(key)
    if cached is not None and cached[0] is input_schema:
        return cached[1]
    found: HeaderParams = []

    def walk(schema: Any, path: tuple[str, ...]) -> None:
        properties = schema.get("properties") if isinstance(schema, dict) else None
        if not isinstance(properties, dict):
            return
        for name, sub in properties.items():
            if isinstance(sub, dict):
                header = sub.get("x-mcp-header")
                if isinstance(header, str) and header:
                    found.append(((*path, name), header))
                walk(sub, (*path, name))

    walk(input_schema, ())
    if len(_annotated) > 4096:
        _annotated.clear()
    _annotated[key] = (input_schema, found)
    return found


def argument_at(arguments: Any, path: tuple[str, ...]) -> Any:
    """The argument at a ``properties`` path, or None when a step is missing or not an object."""
    value: Any = arguments
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def header_text(value: Any) -> str | None:
    """How an argument is written in its header (``true``/``false``, numbers and strings as text), or
    None for a value no header can carry (objects, arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def param_headers(input_schema: Any, arguments: Any) -> dict[str, str]:
    """The ``Mcp-Param-{Name}`` headers a ``tools/call`` with these arguments sends (none for an
    absent or null argument)."""
    headers: dict[str, str] = {}
    for path, name in header_params(input_schema):
        text = header_text(argument_at(arguments, path))
        if text is not None:
            headers[PARAM_HEADER_PREFIX + name] = encode_header_value(text)
    return headers
