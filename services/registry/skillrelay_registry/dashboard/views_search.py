"""Search across the owner's skillsets, abilities and MCP servers (``/dashboard/search?q=…``)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from skillrelay_registry.api.common import OwnerId, Service
from skillrelay_registry.dashboard.pages import as_dict, render
from skillrelay_registry.dashboard.views_skillsets import LIST_ALL


@get("/search")
async def search(request: Request[Any, Any, Any], service: Service, owner_id: OwnerId) -> Response[str]:
    words = (request.query_params.get("q") or "").strip()
    found = await service.search(owner_id, words)
    skillset_names = {item.id: item.name for item in (await service.list_skillsets(owner_id, LIST_ALL)).items}
    return render(
        request,
        "search.html",
        words=words,
        skillsets=[as_dict(item) for item in found.skillsets],
        abilities=[as_dict(item) for item in found.abilities],
        integrations=[as_dict(item) for item in found.integrations],
        skillset_names=skillset_names,
    )


SEARCH_HANDLERS = [search]
