"""``/api/v1/integration/mcpserver/*``: MCP server integrations, their token and their sessions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter

from skillrelay_registry import schemas
from skillrelay_registry.api.common import LIST_DEPENDENCIES, OwnerId, Query, Service, as_awaitable, listing
from skillrelay_registry.pagination import MAX_TAKE, SessionQuery, parse_session_query

SessionListQuery = NamedDependency[SessionQuery]


def provide_session_query(
    request: Request[Any, Any, Any],
    cursor: Annotated[str | None, QueryParameter(description="opaque cursor from the previous page")] = None,
    take: Annotated[int, QueryParameter(ge=1, le=MAX_TAKE, description="page size")] = 20,
    order: Annotated[Literal["asc", "desc"], QueryParameter(description="by createdAt, then id")] = "desc",
) -> SessionQuery:
    """Documents the parameters; they are parsed (and checked) from the raw query string."""
    del cursor, take, order
    return parse_session_query(request.query_params.multi_items())


class IntegrationController(Controller):
    path = "/integration/mcpserver"
    tags = ["mcp server integrations"]

    @post("/create", status_code=200, summary="Create an integration; the only answer with its token")
    async def create(
        self, service: Service, owner_id: OwnerId, data: JSONBody[schemas.IntegrationCreate]
    ) -> schemas.IntegrationCreated:
        return await service.create_integration(owner_id, data)

    @get(
        "/list",
        dependencies=LIST_DEPENDENCIES,
        description="Filters: blueprintId, meta[key]=value (meta[a][b]=value for nested keys). "
        "With Accept: application/jsonl every matching item is streamed, one "
        '{"type":"item","data":{...}} per line.',
    )
    async def list(
        self, request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, list_query: Query
    ) -> Response[schemas.IntegrationPage]:
        return await listing(
            request,
            lambda: service.list_integrations(owner_id, list_query),
            lambda: as_awaitable(service.stream_integrations(owner_id, list_query)),
            schemas.IntegrationPage,
        )

    @get("/{integration_id:str}/fetch")
    async def fetch(
        self, service: Service, owner_id: OwnerId, integration_id: FromPath[str]
    ) -> schemas.IntegrationOut:
        return await service.get_integration(owner_id, integration_id)

    @post("/{integration_id:str}/update", status_code=200)
    async def update(
        self,
        service: Service,
        owner_id: OwnerId,
        integration_id: FromPath[str],
        data: JSONBody[schemas.IntegrationUpdate],
    ) -> schemas.Created:
        return await service.update_integration(owner_id, integration_id, data)

    @post("/{integration_id:str}/token/rotate", status_code=200)
    async def rotate_token(
        self,
        service: Service,
        owner_id: OwnerId,
        integration_id: FromPath[str],
        data: JSONBody[schemas.EmptyBody | None] = None,
    ) -> schemas.TokenRotated:
        return await service.rotate_integration_token(owner_id, integration_id)

    @post("/{integration_id:str}/delete", status_code=200)
    async def delete(
        self,
        service: Service,
        owner_id: OwnerId,
        integration_id: FromPath[str],
        data: JSONBody[schemas.EmptyBody | None] = None,
    ) -> schemas.Created:
        return await service.delete_integration(owner_id, integration_id)

    @get(
        "/{integration_id:str}/session/list",
        dependencies={"session_query": Provide(provide_session_query, sync_to_thread=False)},
        description="Live 2025-era sessions, a page at a time: cursor, take (1-100, default 20), "
        "order (asc or desc by createdAt, default desc). cursor is absent on the last page.",
    )
    async def list_sessions(
        self,
        service: Service,
        owner_id: OwnerId,
        integration_id: FromPath[str],
        session_query: SessionListQuery,
    ) -> schemas.SessionListOut:
        return await service.list_integration_sessions(owner_id, integration_id, session_query)

    @post("/{integration_id:str}/session/{session_id:str}/delete", status_code=200)
    async def delete_session(
        self,
        service: Service,
        owner_id: OwnerId,
        integration_id: FromPath[str],
        session_id: FromPath[str],
        data: JSONBody[schemas.EmptyBody | None] = None,
    ) -> schemas.Created:
        return await service.close_integration_session(owner_id, integration_id, session_id)
