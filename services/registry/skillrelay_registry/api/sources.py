"""``/api/v1/skillset/{skillsetId}/source/*``: upstream MCP servers and OpenAPI documents as sources."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from skillrelay_registry import schemas
from skillrelay_registry.api.common import LIST_DEPENDENCIES, OwnerId, Query, Service, listing
from skillrelay_registry.sources.schemas import SourceCreate, SourceOut, SourcePage, SourceUpdate


class SourceController(Controller):
    path = "/skillset/{skillset_id:str}/source"
    tags = ["skillsets"]

    @post("/create", status_code=200)
    async def create(
        self, service: Service, owner_id: OwnerId, skillset_id: FromPath[str], data: JSONBody[SourceCreate]
    ) -> schemas.Created:
        """Reads the source's listings before answering; a source that cannot be read is still created,
        with ``status: "error"`` and ``lastError`` saying why."""
        return await service.create_source(owner_id, skillset_id, data)

    @get("/list", dependencies=LIST_DEPENDENCIES)
    async def list(
        self,
        request: Request[Any, Any, Any],
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        list_query: Query,
    ) -> Response[SourcePage]:
        return await listing(
            request,
            lambda: service.list_sources(owner_id, skillset_id, list_query),
            lambda: service.stream_sources(owner_id, skillset_id, list_query),
            SourcePage,
        )

    @get("/{source_id:str}/fetch")
    async def fetch(
        self, service: Service, owner_id: OwnerId, skillset_id: FromPath[str], source_id: FromPath[str]
    ) -> SourceOut:
        return await service.get_source(owner_id, skillset_id, source_id)

    @post("/{source_id:str}/update", status_code=200)
    async def update(
        self,
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        source_id: FromPath[str],
        data: JSONBody[SourceUpdate],
    ) -> schemas.Created:
        return await service.update_source(owner_id, skillset_id, source_id, data)

    @post("/{source_id:str}/delete", status_code=200)
    async def delete(
        self,
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        source_id: FromPath[str],
        data: JSONBody[schemas.EmptyBody | None] = None,
    ) -> schemas.Created:
        return await service.delete_source(owner_id, skillset_id, source_id)

    @post("/{source_id:str}/refresh", status_code=200)
    async def refresh(
        self,
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        source_id: FromPath[str],
        data: JSONBody[schemas.EmptyBody | None] = None,
    ) -> SourceOut:
        """Reads the upstream's listings again now; answers the source with its new status."""
        return await service.refresh_source(owner_id, skillset_id, source_id)
