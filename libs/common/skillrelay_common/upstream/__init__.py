"""Upstream MCP servers (skillset sources of type ``mcp``): a lean Streamable HTTP client for both
eras (``client.py``), reading an upstream's listings (``catalog.py``), and watching it for
``list_changed`` (``watch.py``)."""

from skillrelay_common.upstream.catalog import UpstreamCatalog, read_catalog
from skillrelay_common.upstream.client import (
    IGNORE_MESSAGES,
    MessageHandler,
    UpstreamConnection,
    UpstreamError,
    UpstreamRpcError,
    UpstreamUnreachable,
    new_http_client,
)
from skillrelay_common.upstream.watch import watch_changes

__all__ = [
    "IGNORE_MESSAGES",
    "MessageHandler",
    "UpstreamCatalog",
    "UpstreamConnection",
    "UpstreamError",
    "UpstreamRpcError",
    "UpstreamUnreachable",
    "new_http_client",
    "read_catalog",
    "watch_changes",
]
