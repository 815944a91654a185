"""``/api/v1/skillset/*`` (the skillset itself; its abilities, resources and prompts have their own
controllers)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from skillrelay_registry import schemas
from skillrelay_registry.api.common import LIST_DEPENDENCIES, OwnerId, Query, Service, as_awaitable, listing


class SkillsetController(Controller):
    path = "/skillset"
    tags = ["skillsets"]

    @post("/create", status_code=200)
    async def create(
        self, service: Service, owner_id: OwnerId, data: JSONBody[schemas.SkillsetCreate]
    ) -> schemas.Created:
        return await service.create_skillset(owner_id, data)

    @get("/list", dependencies=LIST_DEPENDENCIES)
    async def list(
        self, request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, list_query: Query
    ) -> Response[schemas.SkillsetPage]:
        return await listing(
            request,
            lambda: service.list_skillsets(owner_id, list_query),
            lambda: as_awaitable(service.stream_skillsets(owner_id, list_query)),
            schemas.SkillsetPage,
        )

    @get("/{skillset_id:str}/fetch")
    async def fetch(
        self, service: Service, owner_id: OwnerId, skillset_id: FromPath[str]
    ) -> schemas.SkillsetOut:
        return await service.get_skillset(owner_id, skillset_id)

    @post("/{skillset_id:str}/update", status_code=200)
    async def update(
        self,
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        data: JSONBody[schemas.SkillsetUpdate],
    ) -> schemas.Created:
        return await service.update_skillset(owner_id, skillset_id, data)

    @post("/{skillset_id:str}/delete", status_code=200)
    async def delete(
        self,
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        data: JSONBody[schemas.EmptyBody | None] = None,
    ) -> schemas.Created:
        return await service.delete_skillset(owner_id, skillset_id)
