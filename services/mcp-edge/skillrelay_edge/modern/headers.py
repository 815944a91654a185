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
NAME_FIELD = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
    # Tasks extension: routing by task (an intermediary may send a task's requests to one place).
    "tasks/get": "taskId",
    "tasks/update": "taskId",
    "tasks/cancel": "taskId",
}
_SENTINEL = re.compile(r"^=\?base64\?(.*)\?=$", re.DOTALL)
# RFC 9110 field values: visible ASCII, space and horizontal tab.
_FIELD_VALUE = re.compile(r"^[\x20-\x7e\t]*$")


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


# --- Mcp-Param-{Name}: tool arguments a tool's inputSchema marks with ``x-mcp-header`` ----------

_annotated: dict[int, tuple[Any, list[tuple[tuple[str, ...], str]]]] = {}


def header_params(input_schema: Any) -> list[tuple[tuple[str, ...], str]]:
    """``(property path, header name)`` of every ``x-mcp-header`` in a tool's inputSchema (through
    ``properties`` only, as the spec defines the path). Cached per schema object: the catalog keeps
    its schemas for the snapshot's life, so this walk happens once per tool, not per call."""
    key = id(input_schema)
    cached = _annotated.get(key)
    if cached is not None and cached[0] is input_schema:
        return cached[1]
    found: list[tuple[tuple[str, ...], str]] = []

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


def _as_header_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _same(header: str, value: Any) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(header) == float(value)  # numerically: 42.0 and 42 are equal
        except ValueError:
            return False
    return header == _as_header_text(value)


def check_param_headers(headers: Mapping[str, str], input_schema: Any, arguments: Any) -> None:
    """Each argument a tool mirrors into ``Mcp-Param-{Name}`` must come with that header, equal to it
    after decoding (-32020 otherwise); an absent or null argument expects no header."""
    for path, name in header_params(input_schema):
        value: Any = arguments
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        raw = headers.get(f"mcp-param-{name.lower()}")
        if value is None:
            continue
        if raw is None:
            raise ModernError(HEADER_MISMATCH, f"Header mismatch: the Mcp-Param-{name} header is required")
        try:
            decoded = decode_header_value(raw)
        except ValueError as exc:
            raise ModernError(HEADER_MISMATCH, f"Header mismatch: Mcp-Param-{name} {exc}") from None
        if not _same(decoded, value):
            raise ModernError(
                HEADER_MISMATCH, f"Header mismatch: Mcp-Param-{name} does not match the argument"
            )
