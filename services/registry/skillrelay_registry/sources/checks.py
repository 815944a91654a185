"""What a skillset source may be: the input rules (each broken one a 400 with a clear message) and the
limits (docs/limits.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from skillrelay_common.ssrf import TargetRefused, parse_target
from skillrelay_registry import validation
from skillrelay_registry.errors import InvalidInput

MAX_SOURCES_PER_SKILLSET = 20
MAX_HEADERS = 32
MAX_HEADER_VALUE = 8 * 1024
MAX_PREFIX = 32
# Headers the edge sets itself on every forwarded request (a source may not override them).
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "upgrade",
        "accept",
        "mcp-session-id",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
        "last-event-id",
    }
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_PREFIX = re.compile(r"^[A-Za-z0-9_.\-]*$")
_PATTERN = re.compile(r"^[A-Za-z0-9_.\-*?/:{}]+$")


def upstream_url(value: str, field: str) -> str:
    """An http(s) URL the outbound guard could call (a private address is refused when the source is
    read, unless the operator allows private targets)."""
    validation.http_url(value, field)
    try:
        parse_target(value)
    except TargetRefused as exc:
        raise InvalidInput(f"{field}: {exc}") from None
    return value


def headers(values: Mapping[str, str]) -> dict[str, str]:
    if len(values) > MAX_HEADERS:
        raise InvalidInput(f"headers: at most {MAX_HEADERS} headers")
    for name, value in values.items():
        if not _HEADER_NAME.fullmatch(name):
            raise InvalidInput(f"headers: {name!r} is not a valid header name")
        if name.lower() in RESERVED_HEADERS:
            raise InvalidInput(f"headers: {name!r} is set by Skillrelay and may not be given")
        if any(char in value for char in "\r\n\0"):
            raise InvalidInput(f"headers: the value of {name!r} holds a line break")
        if len(value) > MAX_HEADER_VALUE:
            raise InvalidInput(f"headers: the value of {name!r} is longer than {MAX_HEADER_VALUE} characters")
    return dict(values)


def prefix(value: str) -> str:
    if len(value) > MAX_PREFIX or not _PREFIX.fullmatch(value):
        raise InvalidInput(f"prefix must be at most {MAX_PREFIX} characters of A-Z, a-z, 0-9, '_', '-', '.'")
    return value


def name_patterns(values: list[str], field: str) -> list[str]:
    """Names, or shell-style patterns (``get_*``), of the upstream's tools, prompts and resources."""
    for value in values:
        if len(value) > 256 or not _PATTERN.fullmatch(value):
            raise InvalidInput(f"{field}: {value!r} is not a name or a pattern of names")
    return list(values)
