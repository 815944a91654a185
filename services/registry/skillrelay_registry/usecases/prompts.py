"""Prompts: what creating and updating one checks and merges (arguments and messages, or a dynamic
handler)."""

from __future__ import annotations

import msgspec
from msgspec import UNSET

from skillrelay_common import ids
from skillrelay_registry import convert, schemas, validation
from skillrelay_registry.kinds import PROMPT
from skillrelay_registry.models import Prompt
from skillrelay_registry.usecases.base import child, conflict_on_duplicate, skillset_event
from skillrelay_registry.usecases.contents import ContentUseCases


class PromptUseCases(ContentUseCases):
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
        return await self._insert_named(PROMPT, owner_id, row)

    async def update_prompt(
        self, owner_id: str, skillset_id: str, prompt_id: str, data: schemas.PromptUpdate
    ) -> schemas.Created:
        if data.name is not UNSET:
            validation.require_name(data.name)
        if data.handler is not UNSET and data.handler is not None:
            validation.handler(data.handler)
        now = self._clock()
        with conflict_on_duplicate(PROMPT.duplicate(data.name)):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, skillset_id)
                row = await child(repo, Prompt, skillset_id, prompt_id, "prompt")
                if data.name is not UNSET:
                    await self._rename(PROMPT, repo, row, data.name)
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
