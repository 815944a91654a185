"""``/api/v1/oauth/connection/*``: the client secret goes in, never out."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from skillrelay_registry import schemas
from skillrelay_registry.api.common import LIST_DEPENDENCIES, OwnerId, Query, Service, as_awaitable, listing


class OAuthConnectionController(Controller):
    path = "/oauth/connection"
    tags = ["oauth connections"]

    @post("/create", status_code=200)
    async def create(
        self, service: Service, owner_id: OwnerId, data: JSONBody[schemas.OAuthConnectionCreate]
    ) -> schemas.Created:
        return await service.create_oauth_connection(owner_id, data)

    @get("/list", dependencies=LIST_DEPENDENCIES)
    async def list(
        self, request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, list_query: Query
    ) -> Response[schemas.OAuthConnectionPage]:
        return await listing(
            request,
            lambda: service.list_oauth_connections(owner_id, list_query),
            lambda: as_awaitable(service.stream_oauth_connections(owner_id, list_query)),
            schemas.OAuthConnectionPage,
        )

    @get("/{connection_id:str}/fetch")
    async def fetch(
        self, service: Service, owner_id: OwnerId, connection_id: FromPath[str]
    ) -> schemas.OAuthConnectionOut:
        return await service.get_oauth_connection(owner_id, connection_id)

    @post("/{connection_id:str}/update", status_code=200)
    async def update(
        self,
        service: Service,
        owner_id: OwnerId,
        connection_id: FromPath[str],
        data: JSONBody[schemas.OAuthConnectionUpdate],
    ) -> schemas.Created:
        return await service.update_oauth_connection(owner_id, connection_id, data)

    @post("/{connection_id:str}/delete", status_code=200)
    async def delete(
        self,
        service: Service,
        owner_id: OwnerId,
        connection_id: FromPath[str],
        data: JSONBody[schemas.EmptyBody | None] = None,
    ) -> schemas.Created:
        return await service.delete_oauth_connection(owner_id, connection_id)
