"""Resources and prompts of a skillset."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from msgspec import UNSET

from skillrelay_common import ids
from skillrelay_registry import convert, schemas, validation
from skillrelay_registry.models import Prompt, Resource, Skillset
from skillrelay_registry.pagination import ListQuery, Page
from skillrelay_registry.usecases.base import (
    UseCaseBase,
    child,
    child_fetch,
    conflict_on_duplicate,
    owned,
    resource_uri,
    skillset_event,
)


class ContentUseCases(UseCaseBase):
    # -- resources -------------------------------------------------------------------------------

    async def create_resource(
        self, owner_id: str, skillset_id: str, data: schemas.ResourceCreate
    ) -> schemas.Created:
        validation.require_name(data.name)
        validation.resource_shape(
            uri_value=data.uri,
            template=data.uri_template,
            text=data.text,
            blob=data.blob,
            has_handler=data.handler is not None,
        )
        if data.handler is not None:
            validation.handler(data.handler)
        now = self._clock()
        row = Resource(
            id=ids.new_id(ids.RESOURCE),
            owner_id=owner_id,
            skillset_id=skillset_id,
            name=data.name,
            title=data.title,
            description=data.description,
            uri=data.uri,
            uri_template=data.uri_template,
            mime_type=data.mime_type,
            text_content=data.text,
            blob=data.blob,
            handler=None if data.handler is None else convert.handler_json(data.handler),
            annotations=data.annotations,
            size=data.size,
            meta=data.meta,
            created_at=now,
            updated_at=now,
        )
        with conflict_on_duplicate("a resource with this uri or uriTemplate already exists in this skillset"):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, skillset_id)
                repo.add(row)
                await repo.flush()
                revision = await self._bump_revision_if_it_fits(repo, skillset_id, now)
        await self._publish(
            [
                skillset_event(
                    skillset_id, owner_id, "created", "resource", row.id, resource_uri(row), revision
                )
            ]
        )
        return schemas.Created(id=row.id)

    async def list_resources(
        self, owner_id: str, skillset_id: str, query: ListQuery
    ) -> Page[schemas.ResourceOut]:
        await self._require_skillset(owner_id, skillset_id)
        return await self._page(child_fetch(Resource, skillset_id), query, convert.resource_out)

    async def stream_resources(
        self, owner_id: str, skillset_id: str, query: ListQuery
    ) -> AsyncIterator[schemas.ResourceOut]:
        await self._require_skillset(owner_id, skillset_id)
        return self._stream(child_fetch(Resource, skillset_id), query, convert.resource_out)

    async def get_resource(self, owner_id: str, skillset_id: str, resource_id: str) -> schemas.ResourceOut:
        async with self._unit() as repo:
            await owned(repo, Skillset, owner_id, skillset_id, "skillset")
            return convert.resource_out(await child(repo, Resource, skillset_id, resource_id, "resource"))

    async def update_resource(
        self, owner_id: str, skillset_id: str, resource_id: str, data: schemas.ResourceUpdate
    ) -> schemas.Created:
        if data.name is not UNSET:
            validation.require_name(data.name)
        if data.handler is not UNSET and data.handler is not None:
            validation.handler(data.handler)
        now = self._clock()
        with conflict_on_duplicate("a resource with this uri or uriTemplate already exists in this skillset"):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, skillset_id)
                row = await child(repo, Resource, skillset_id, resource_id, "resource")
                for field in ("name", "title", "description", "uri", "uri_template", "mime_type", "blob"):
                    value = getattr(data, field)
                    if value is not UNSET:
                        setattr(row, field, value)
                if data.text is not UNSET:
                    row.text_content = data.text
                if data.handler is not UNSET:
                    row.handler = None if data.handler is None else convert.handler_json(data.handler)
                if data.annotations is not UNSET:
                    row.annotations = data.annotations
                if data.size is not UNSET:
                    row.size = data.size
                if data.meta is not UNSET:
                    row.meta = data.meta
                # The merged record must still be a valid resource.
                validation.resource_shape(
                    uri_value=row.uri,
                    template=row.uri_template,
                    text=row.text_content,
                    blob=row.blob,
                    has_handler=row.handler is not None,
                )
                row.updated_at = now
                await repo.flush()
                revision = await self._bump_revision_if_it_fits(repo, skillset_id, now)
        await self._publish(
            [
                skillset_event(
                    skillset_id, owner_id, "updated", "resource", row.id, resource_uri(row), revision
                )
            ]
        )
        return schemas.Created(id=resource_id)

    async def delete_resource(self, owner_id: str, skillset_id: str, resource_id: str) -> schemas.Created:
        return await self._delete_child(owner_id, skillset_id, Resource, resource_id, "resource")

    # -- prompts ---------------------------------------------------------------------------------

    async def create_prompt(
        self, owner_id: str, skillset_id: str, data: schemas.PromptCreate
    ) -> schemas.Created:
        validation.require_name(data.name)
        validation.prompt_shape(data.arguments, data.messages, data.handler is not None)
        if data.handler is not None:
            validation.handler(data.handler)
        now = self._clock()
        row = Prompt(
            id=ids.new_id(ids.PROMPT),
            owner_id=owner_id,
            skillset_id=skillset_id,
            name=data.name,
            title=data.title,
            description=data.description,
            arguments=msgspec.to_builtins(data.arguments),
            messages=msgspec.to_builtins(data.messages),
            handler=None if data.handler is None else convert.handler_json(data.handler),
            meta=data.meta,
            created_at=now,
            updated_at=now,
        )
        return await self._insert_named_child(
            owner_id, row, "prompt", f"a prompt named {data.name!r} already exists in this skillset"
        )

    async def list_prompts(
        self, owner_id: str, skillset_id: str, query: ListQuery
    ) -> Page[schemas.PromptOut]:
        await self._require_skillset(owner_id, skillset_id)
        return await self._page(child_fetch(Prompt, skillset_id), query, convert.prompt_out)

    async def stream_prompts(
        self, owner_id: str, skillset_id: str, query: ListQuery
    ) -> AsyncIterator[schemas.PromptOut]:
        await self._require_skillset(owner_id, skillset_id)
        return self._stream(child_fetch(Prompt, skillset_id), query, convert.prompt_out)

    async def get_prompt(self, owner_id: str, skillset_id: str, prompt_id: str) -> schemas.PromptOut:
        async with self._unit() as repo:
            await owned(repo, Skillset, owner_id, skillset_id, "skillset")
            return convert.prompt_out(await child(repo, Prompt, skillset_id, prompt_id, "prompt"))

    async def update_prompt(
        self, owner_id: str, skillset_id: str, prompt_id: str, data: schemas.PromptUpdate
    ) -> schemas.Created:
        if data.name is not UNSET:
            validation.require_name(data.name)
        if data.handler is not UNSET and data.handler is not None:
            validation.handler(data.handler)
        now = self._clock()
        duplicate = f"a prompt named {data.name!r} already exists in this skillset"
        with conflict_on_duplicate(duplicate):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, skillset_id)
                row = await child(repo, Prompt, skillset_id, prompt_id, "prompt")
                if data.name is not UNSET:
                    await self._rename_child(repo, row, data.name, duplicate)
                if data.title is not UNSET:
                    row.title = data.title
                if data.description is not UNSET:
                    row.description = data.description
                arguments = (
                    msgspec.convert(row.arguments, list[schemas.PromptArgumentIn])
                    if data.arguments is UNSET
                    else data.arguments
                )
                messages = (
                    msgspec.convert(row.messages, list[schemas.PromptMessageIn])
                    if data.messages is UNSET
                    else data.messages
                )
                handler = convert.load_dynamic_handler(row.handler) if data.handler is UNSET else data.handler
                validation.prompt_shape(arguments, messages, handler is not None)
                row.arguments = msgspec.to_builtins(arguments)
                row.messages = msgspec.to_builtins(messages)
                row.handler = None if handler is None else convert.handler_json(handler)
                if data.meta is not UNSET:
                    row.meta = data.meta
                row.updated_at = now
                await repo.flush()
                revision = await self._bump_revision_if_it_fits(repo, skillset_id, now)
        await self._publish(
            [skillset_event(skillset_id, owner_id, "updated", "prompt", prompt_id, None, revision)]
        )
        return schemas.Created(id=prompt_id)

    async def delete_prompt(self, owner_id: str, skillset_id: str, prompt_id: str) -> schemas.Created:
        return await self._delete_child(owner_id, skillset_id, Prompt, prompt_id, "prompt")
