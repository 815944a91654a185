"""``/api/v1/blueprint/*``"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from skillrelay_registry import schemas
from skillrelay_registry.api.common import LIST_DEPENDENCIES, OwnerId, Query, Service, as_awaitable, listing


class BlueprintController(Controller):
    path = "/blueprint"
    tags = ["blueprints"]

    @post("/create", status_code=200)
    async def create(
        self, service: Service, owner_id: OwnerId, data: JSONBody[schemas.BlueprintCreate]
    ) -> schemas.Created:
        return await service.create_blueprint(owner_id, data)

    @get("/list", dependencies=LIST_DEPENDENCIES)
    async def list(
        self, request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, list_query: Query
    ) -> Response[schemas.BlueprintPage]:
        return await listing(
            request,
            lambda: service.list_blueprints(owner_id, list_query),
            lambda: as_awaitable(service.stream_blueprints(owner_id, list_query)),
            schemas.BlueprintPage,
        )

    @get("/{blueprint_id:str}/fetch")
    async def fetch(
        self, service: Service, owner_id: OwnerId, blueprint_id: FromPath[str]
    ) -> schemas.BlueprintOut:
        return await service.get_blueprint(owner_id, blueprint_id)

    @post("/{blueprint_id:str}/update", status_code=200)
    async def update(
        self,
        service: Service,
        owner_id: OwnerId,
        blueprint_id: FromPath[str],
        data: JSONBody[schemas.BlueprintUpdate],
    ) -> schemas.Created:
        return await service.update_blueprint(owner_id, blueprint_id, data)

    @post("/{blueprint_id:str}/delete", status_code=200)
    async def delete(
        self,
        service: Service,
        owner_id: OwnerId,
        blueprint_id: FromPath[str],
        data: JSONBody[schemas.EmptyBody | None] = None,
    ) -> schemas.Created:
        return await service.delete_blueprint(owner_id, blueprint_id)
