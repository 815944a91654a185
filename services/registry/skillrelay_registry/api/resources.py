"""``/api/v1/skillset/{skillsetId}/resource/*``"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from skillrelay_registry import schemas
from skillrelay_registry.api.common import LIST_DEPENDENCIES, OwnerId, Query, Service, listing


class ResourceController(Controller):
    path = "/skillset/{skillset_id:str}/resource"
    tags = ["skillsets"]

    @post("/create", status_code=200)
    async def create(
        self,
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        data: JSONBody[schemas.ResourceCreate],
    ) -> schemas.Created:
        return await service.create_resource(owner_id, skillset_id, data)

    @get("/list", dependencies=LIST_DEPENDENCIES)
    async def list(
        self,
        request: Request[Any, Any, Any],
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        list_query: Query,
    ) -> Response[schemas.ResourcePage]:
        return await listing(
            request,
            lambda: service.list_resources(owner_id, skillset_id, list_query),
            lambda: service.stream_resources(owner_id, skillset_id, list_query),
            schemas.ResourcePage,
        )

    @get("/{resource_id:str}/fetch")
    async def fetch(
        self, service: Service, owner_id: OwnerId, skillset_id: FromPath[str], resource_id: FromPath[str]
    ) -> schemas.ResourceOut:
        return await service.get_resource(owner_id, skillset_id, resource_id)

    @post("/{resource_id:str}/update", status_code=200)
    async def update(
        self,
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        resource_id: FromPath[str],
        data: JSONBody[schemas.ResourceUpdate],
    ) -> schemas.Created:
        return await service.update_resource(owner_id, skillset_id, resource_id, data)

    @post("/{resource_id:str}/delete", status_code=200)
    async def delete(
        self,
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        resource_id: FromPath[str],
        data: JSONBody[schemas.EmptyBody | None] = None,
    ) -> schemas.Created:
        return await service.delete_resource(owner_id, skillset_id, resource_id)
