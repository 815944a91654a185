"""Prompts: what creating and updating one checks and merges (arguments and messages, or a dynamic
handler)."""

from __future__ import annotations

import msgspec
from msgspec import UNSET

from skillrelay_registry import convert, schemas, validation
from skillrelay_registry.kinds import PROMPT
from skillrelay_registry.models import Prompt
from skillrelay_registry.repo import Repository
from skillrelay_registry.usecases.contents import ContentUseCases, copy_given


class PromptUseCases(ContentUseCases):
    async def create_prompt(
        self, owner_id: str, skillset_id: str, data: schemas.PromptCreate
    ) -> schemas.Created:
        validation.require_name(data.name)
        validation.prompt_shape(data.arguments, data.messages, data.handler is not None)
        if data.handler is not None:
            validation.handler(data.handler)
        row = Prompt(
            **self._new_item(PROMPT, owner_id, skillset_id, data),
            arguments=msgspec.to_builtins(data.arguments),
            messages=msgspec.to_builtins(data.messages),
            handler=None if data.handler is None else convert.handler_json(data.handler),
        )
        return await self._insert_named(PROMPT, owner_id, row)

    async def update_prompt(
        self, owner_id: str, skillset_id: str, prompt_id: str, data: schemas.PromptUpdate
    ) -> schemas.Created:
        if data.name is not UNSET:
            validation.require_name(data.name)
        if data.handler is not UNSET and data.handler is not None:
            validation.handler(data.handler)

        async def merge(repo: Repository, row: Prompt) -> None:
            if data.name is not UNSET:
                await self._rename(PROMPT, repo, row, data.name)
            copy_given(row, data, ("title", "description", "meta"))
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
            # The merged prompt must still be valid (its messages may name a dropped argument).
            validation.prompt_shape(arguments, messages, handler is not None)
            row.arguments = msgspec.to_builtins(arguments)
            row.messages = msgspec.to_builtins(messages)
            row.handler = None if handler is None else convert.handler_json(handler)

        return await self._update(
            PROMPT, owner_id, skillset_id, prompt_id, merge, duplicate=PROMPT.duplicate(data.name)
        )
