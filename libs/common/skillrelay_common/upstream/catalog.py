"""``read_catalog``: what an upstream MCP server offers (its tools, resources, resource templates and
prompts, as the upstream's own JSON), read page by page. The registry stores it as a source's catalog.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from skillrelay_common.outbound.targets import TargetCache
from skillrelay_common.schemas.abilities import SourceDef
from skillrelay_common.upstream.client import (
    METHOD_NOT_FOUND,
    Era,
    UpstreamConnection,
    UpstreamError,
    UpstreamRpcError,
)

# A bound on what one upstream may bring (pages followed per list, items kept per list).
MAX_PAGES = 50
MAX_ITEMS = 1000
# Fields of 2026 results that describe the answer, not the item (never stored with an item).
_ANSWER_FIELDS = ("resultType", "ttlMs", "cacheScope")


class UpstreamCatalog(msgspec.Struct, kw_only=True, rename="camel"):
    """An upstream's listings, each item the upstream's own JSON object (``name``, ``inputSchema``…)."""

    tools: list[dict[str, Any]] = msgspec.field(default_factory=list)
    resources: list[dict[str, Any]] = msgspec.field(default_factory=list)
    resource_templates: list[dict[str, Any]] = msgspec.field(default_factory=list)
    prompts: list[dict[str, Any]] = msgspec.field(default_factory=list)
    # What the upstream said of itself (``serverInfo``) and which era it spoke.
    server_info: dict[str, Any] = msgspec.field(default_factory=dict)
    era: str = ""


# The list method, the result's field, and the server capability that says the list exists.
_LISTS = (
    ("tools/list", "tools", "tools"),
    ("resources/list", "resources", "resources"),
    ("resources/templates/list", "resourceTemplates", "resources"),
    ("prompts/list", "prompts", "prompts"),
)


async def read_catalog(
    source: SourceDef,
    *,
    allow_private: bool = False,
    targets: TargetCache | None = None,
    http: httpx.AsyncClient | None = None,
    eras: tuple[Era, ...] = ("stateless", "session"),
) -> UpstreamCatalog:
    """Read every list the upstream offers; raises ``UpstreamError`` (message safe to show).

    The URL goes through the SSRF guard: a private or loopback address only with ``allow_private``
    (the operator's ``SKILLRELAY_ALLOW_PRIVATE_HTTP_TARGETS``). Each request is bounded by the
    source's ``timeout_ms``."""
    connection = UpstreamConnection(
        source, targets=targets or TargetCache(allow_private=allow_private), http=http, eras=eras
    )
    try:
        await connection.connect()
        catalog = UpstreamCatalog(server_info=connection.server_info, era=connection.era or "")
        capabilities = connection.server_capabilities
        for method, field, capability in _LISTS:
            # A session-era upstream declares what it has; a stateless one is asked for everything
            # its discover answer names, or everything when it names nothing.
            if capabilities and capability not in capabilities:
                continue
            items = await _read_list(connection, method, field)
            setattr(catalog, _ATTRIBUTE[field], items)
        return catalog
    finally:
        await connection.aclose()


_ATTRIBUTE = {
    "tools": "tools",
    "resources": "resources",
    "resourceTemplates": "resource_templates",
    "prompts": "prompts",
}


async def _read_list(connection: UpstreamConnection, method: str, field: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    seen_cursors: set[str] = set()
    for _page in range(MAX_PAGES):
        params: dict[str, Any] = {} if cursor is None else {"cursor": cursor}
        try:
            result = await connection.request(method, params)
        except UpstreamRpcError as exc:
            if exc.code == METHOD_NOT_FOUND and not items:
                return []  # the upstream has no such list (it declared no capability to say so)
            raise
        page = result.get(field)
        if not isinstance(page, list):
            raise UpstreamError(f"upstream {connection.label} answered {method} without a {field!r} list")
        for item in page:
            if isinstance(item, dict):
                items.append({key: value for key, value in item.items() if key not in _ANSWER_FIELDS})
        if len(items) > MAX_ITEMS:
            raise UpstreamError(f"upstream {connection.label} lists more than {MAX_ITEMS} {field}")
        next_cursor = result.get("nextCursor")
        if not isinstance(next_cursor, str) or not next_cursor or next_cursor in seen_cursors:
            return items
        seen_cursors.add(next_cursor)
        cursor = next_cursor
    raise UpstreamError(f"upstream {connection.label} lists {field} on more than {MAX_PAGES} pages")
