"""Abilities (MCP tools): what creating and updating one checks and merges."""

from __future__ import annotations

from msgspec import UNSET

from skillrelay_registry import convert, schemas, validation
from skillrelay_registry.kinds import ABILITY
from skillrelay_registry.models import Ability
from skillrelay_registry.repo import Repository
from skillrelay_registry.usecases.contents import ContentUseCases, copy_given


class AbilityUseCases(ContentUseCases):
    async def create_ability(
        self, owner_id: str, skillset_id: str, data: schemas.AbilityCreate
    ) -> schemas.Created:
        validation.tool_name(data.name)
        input_schema = validation.json_schema_object(data.input_schema, "inputSchema")
        output_schema = (
            None
            if data.output_schema is None
            else validation.json_schema_object(data.output_schema, "outputSchema")
        )
        validation.handler(data.handler, tools=True)
        row = Ability(
            **self._new_item(ABILITY, owner_id, skillset_id, data),
            input_schema=input_schema,
            output_schema=output_schema,
            annotations=data.annotations,
            handler=convert.handler_json(data.handler),
        )
        return await self._insert_named(ABILITY, owner_id, row)

    async def update_ability(
        self, owner_id: str, skillset_id: str, ability_id: str, data: schemas.AbilityUpdate
    ) -> schemas.Created:
        if data.name is not UNSET:
            validation.tool_name(data.name)
        if data.input_schema is not UNSET:
            validation.json_schema_object(data.input_schema, "inputSchema")
        if data.output_schema is not UNSET and data.output_schema is not None:
            validation.json_schema_object(data.output_schema, "outputSchema")
        if data.handler is not UNSET:
            validation.handler(data.handler, tools=True)

        async def merge(repo: Repository, row: Ability) -> None:
            if data.name is not UNSET:
                await self._rename(ABILITY, repo, row, data.name)
            copy_given(
                row, data, ("title", "description", "input_schema", "output_schema", "annotations", "meta")
            )
            if data.handler is not UNSET:
                row.handler = convert.handler_json(data.handler)

        return await self._update(
            ABILITY, owner_id, skillset_id, ability_id, merge, duplicate=ABILITY.duplicate(data.name)
        )
