"""``/api/v1/skillset/{skillsetId}/prompt/*``"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from skillrelay_registry import schemas
from skillrelay_registry.api.common import LIST_DEPENDENCIES, OwnerId, Query, Service, listing


class PromptController(Controller):
    path = "/skillset/{skillset_id:str}/prompt"
    tags = ["skillsets"]

    @post("/create", status_code=200)
    async def create(
        self,
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        data: JSONBody[schemas.PromptCreate],
    ) -> schemas.Created:
        return await service.create_prompt(owner_id, skillset_id, data)

    @get("/list", dependencies=LIST_DEPENDENCIES)
    async def list(
        self,
        request: Request[Any, Any, Any],
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        list_query: Query,
    ) -> Response[schemas.PromptPage]:
        return await listing(
            request,
            lambda: service.list_prompts(owner_id, skillset_id, list_query),
            lambda: service.stream_prompts(owner_id, skillset_id, list_query),
            schemas.PromptPage,
        )

    @get("/{prompt_id:str}/fetch")
    async def fetch(
        self, service: Service, owner_id: OwnerId, skillset_id: FromPath[str], prompt_id: FromPath[str]
    ) -> schemas.PromptOut:
        return await service.get_prompt(owner_id, skillset_id, prompt_id)

    @post("/{prompt_id:str}/update", status_code=200)
    async def update(
        self,
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        prompt_id: FromPath[str],
        data: JSONBody[schemas.PromptUpdate],
    ) -> schemas.Created:
        return await service.update_prompt(owner_id, skillset_id, prompt_id, data)

    @post("/{prompt_id:str}/delete", status_code=200)
    async def delete(
        self,
        service: Service,
        owner_id: OwnerId,
        skillset_id: FromPath[str],
        prompt_id: FromPath[str],
        data: JSONBody[schemas.EmptyBody | None] = None,
    ) -> schemas.Created:
        return await service.delete_prompt(owner_id, skillset_id, prompt_id)
