"""``/api/v1/skillset/{skillsetId}/ability/*``"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from skillrelay_registry import schemas
from skillrelay_registry.api.common import LIST_DEPENDENCIES, OwnerId, Query, Service, listing


class AbilityController(Controller):
    path = "/skillset/{skillset_id:str}/ability"
    tags = ["skillsets"]

    @post("/create", status_code=200)
    async def create(
        self,
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        data: JSONBody[schemas.AbilityCreate],
    ) -> schemas.Created:
        return await service.create_ability(owner_id, skillset_id, data)

    @get("/list", dependencies=LIST_DEPENDENCIES)
    async def list(
        self,
        request: Request[Any, Any, Any],
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        list_query: Query,
    ) -> Response[schemas.AbilityPage]:
        return await listing(
            request,
            lambda: service.list_abilities(owner_id, skillset_id, list_query),
            lambda: service.stream_abilities(owner_id, skillset_id, list_query),
            schemas.AbilityPage,
        )

    @get("/{ability_id:str}/fetch")
    async def fetch(
        self, service: Service, owner_id: OwnerId, skillset_id: FromPath[str], ability_id: FromPath[str]
    ) -> schemas.AbilityOut:
        return await service.get_ability(owner_id, skillset_id, ability_id)

    @post("/{ability_id:str}/update", status_code=200)
    async def update(
        self,
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        ability_id: FromPath[str],
        data: JSONBody[schemas.AbilityUpdate],
    ) -> schemas.Created:
        return await service.update_ability(owner_id, skillset_id, ability_id, data)

    @post("/{ability_id:str}/delete", status_code=200)
    async def delete(
        self,
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        ability_id: FromPath[str],
        data: JSONBody[schemas.EmptyBody | None] = None,
    ) -> schemas.Created:
        return await service.delete_ability(owner_id, skillset_id, ability_id)
