"""``Mcp-Method`` / ``Mcp-Name`` (SEP-2243): the HTTP headers that mirror the body must match it, so
an intermediary routing on a header and this server acting on the body never disagree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skillrelay_common.mcp_headers import argument_at, decode_header_value, header_params, header_text
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


def _same(header: str, value: Any) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(header) == float(value)  # numerically: 42.0 and 42 are equal
        except ValueError:
            return False
    return header == header_text(value)


def check_param_headers(headers: Mapping[str, str], input_schema: Any, arguments: Any) -> None:
    """Each argument a tool mirrors into ``Mcp-Param-{Name}`` must come with that header, equal to it
    after decoding (-32020 otherwise); an absent or null argument expects no header."""
    for path, name in header_params(input_schema):
        value = argument_at(arguments, path)
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
