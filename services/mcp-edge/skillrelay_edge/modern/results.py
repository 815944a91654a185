"""Result shapes of the stateless era: ``resultType`` on every result, caching hints (SEP-2549) on the
cacheable ones, and ``server/discover``.

``ttlMs``: a skillset edit reaches every edge replica within milliseconds (registry events empty the
replicas' caches) and every open ``subscriptions/listen`` stream at once, so a listening client never
relies on the TTL. A client that does not listen may keep a list for ``LIST_TTL_MS``, which bounds how
long it can miss an edit. Results a handler computes (worker or http resources) are never fresh.
``cacheScope`` is ``private``: what an integration serves is for the holders of its credentials.
"""

from __future__ import annotations

from typing import Any

from skillrelay_edge.modern.meta import SERVER_INFO_KEY
from skillrelay_edge.protocol.scope import RequestScope, Services

LIST_TTL_MS = 30_000
CACHE_SCOPE = "private"
LIST_METHODS = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list"})
# What this edge offers a stateless client: every family, list changes and resource updates through
# subscriptions/listen, completions, and log messages for requests that ask (``_meta`` logLevel).
CAPABILITIES: dict[str, Any] = {
    "tools": {"listChanged": True},
    "resources": {"subscribe": True, "listChanged": True},
    "prompts": {"listChanged": True},
    "completions": {},
    "logging": {},
}


def complete(result: dict[str, Any], ttl_ms: int | None = None) -> dict[str, Any]:
    """A final result; with caching hints when ``ttl_ms`` is given. A copy: a handler's result may be
    shared (a cached list page, a static tool's content)."""
    if ttl_ms is None:
        return {**result, "resultType": "complete"}
    return {**result, "resultType": "complete", "ttlMs": ttl_ms, "cacheScope": CACHE_SCOPE}


def ttl_for(scope: RequestScope, method: str, params: dict[str, Any]) -> int | None:
    """The caching hint of a result, or None for a method whose results are not cacheable."""
    if method in LIST_METHODS:
        return LIST_TTL_MS
    if method == "resources/read":
        resource = scope.catalog.resources.get(str(params.get("uri")))
        return LIST_TTL_MS if resource is not None and resource.handler is None else 0
    return None


def server_info(scope: RequestScope, services: Services) -> dict[str, Any]:
    catalog = scope.catalog
    return {
        "name": catalog.integration.name or services.server_name,
        "title": catalog.snapshot.skillset.name,
        "version": f"{services.server_version}+r{catalog.snapshot.skillset.revision}",
    }


# With the Tasks extension (``io.modelcontextprotocol/tasks``): worker tools may answer with a task.
CAPABILITIES_WITH_TASKS: dict[str, Any] = {
    **CAPABILITIES,
    "extensions": {"io.modelcontextprotocol/tasks": {}},
}


def discover(
    scope: RequestScope, services: Services, supported: tuple[str, ...], *, tasks: bool = False
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "supportedVersions": list(supported),
        "capabilities": CAPABILITIES_WITH_TASKS if tasks else CAPABILITIES,
        "_meta": {SERVER_INFO_KEY: server_info(scope, services)},
    }
    instructions = scope.catalog.integration.description or scope.catalog.snapshot.skillset.description
    if instructions:
        result["instructions"] = instructions
    return complete(result, LIST_TTL_MS)


def input_required(requests: dict[str, dict[str, Any]], request_state: str) -> dict[str, Any]:
    """An interim result (never cacheable): the questions and the state the retry must echo."""
    return {"resultType": "input_required", "inputRequests": requests, "requestState": request_state}
