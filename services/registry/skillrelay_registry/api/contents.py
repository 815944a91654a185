"""``/api/v1/skillset/{skillsetId}/{ability|resource|prompt}/*``: one controller shape, made for each
``ContentKind``.

This module does not use ``from __future__ import annotations``: the handlers' annotations name the
kind's body and record types, which Litestar must see as real types to decode requests and to write
the OpenAPI document.
"""

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from skillrelay_registry import schemas
from skillrelay_registry.api.common import LIST_DEPENDENCIES, OwnerId, Query, Service, listing
from skillrelay_registry.kinds import KINDS, ContentKind


def content_controller(kind: ContentKind[Any, Any]) -> type[Controller]:
    """The five calls on a skillset's items of one kind."""
    create_body: Any = kind.create_body
    update_body: Any = kind.update_body
    record: Any = kind.record
    page: Any = kind.page

    class ContentController(Controller):
        path = f"/skillset/{{skillset_id:str}}/{kind.name}"
        tags = ["skillsets"]

        @post("/create", status_code=200)
        async def create(
            self,
            service: Service,
            owner_id: OwnerId,
            skillset_id: FromPath[str],
            data: JSONBody[create_body],
        ) -> schemas.Created:
            return await service.create_content(kind, owner_id, skillset_id, data)

        @get("/list", dependencies=LIST_DEPENDENCIES)
        async def list(
            self,
            request: Request[Any, Any, Any],
            service: Service,
            owner_id: OwnerId,
            skillset_id: FromPath[str],
            list_query: Query,
        ) -> Response[page]:
            return await listing(
                request,
                lambda: service.list_content(kind, owner_id, skillset_id, list_query),
                lambda: service.stream_content(kind, owner_id, skillset_id, list_query),
                kind.page,
            )

        @get("/{item_id:str}/fetch")
        async def fetch(
            self, service: Service, owner_id: OwnerId, skillset_id: FromPath[str], item_id: FromPath[str]
        ) -> record:
            return await service.get_content(kind, owner_id, skillset_id, item_id)

        @post("/{item_id:str}/update", status_code=200)
        async def update(
            self,
            service: Service,
            owner_id: OwnerId,
            skillset_id: FromPath[str],
            item_id: FromPath[str],
            data: JSONBody[update_body],
        ) -> schemas.Created:
            return await service.update_content(kind, owner_id, skillset_id, item_id, data)

        @post("/{item_id:str}/delete", status_code=200)
        async def delete(
            self,
            service: Service,
            owner_id: OwnerId,
            skillset_id: FromPath[str],
            item_id: FromPath[str],
            data: JSONBody[schemas.EmptyBody | None] = None,
        ) -> schemas.Created:
            return await service.delete_content(kind, owner_id, skillset_id, item_id)

    ContentController.__name__ = ContentController.__qualname__ = f"{kind.title}Controller"
    return ContentController


def content_controllers() -> list[type[Controller]]:
    return [content_controller(kind) for kind in KINDS]
