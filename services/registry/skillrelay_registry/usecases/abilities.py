"""Abilities (MCP tools): what creating and updating one checks and merges."""

from __future__ import annotations

from msgspec import UNSET

from skillrelay_common import ids
from skillrelay_registry import convert, schemas, validation
from skillrelay_registry.kinds import ABILITY
from skillrelay_registry.models import Ability
from skillrelay_registry.usecases.base import child, conflict_on_duplicate, skillset_event
from skillrelay_registry.usecases.contents import ContentUseCases


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
        validation.handler(data.handler)
        now = self._clock()
        row = Ability(
            id=ids.new_id(ids.ABILITY),
            owner_id=owner_id,
            skillset_id=skillset_id,
            name=data.name,
            title=data.title,
            description=data.description,
            input_schema=input_schema,
            output_schema=output_schema,
            annotations=data.annotations,
            handler=convert.handler_json(data.handler),
            meta=data.meta,
            created_at=now,
            updated_at=now,
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
            validation.handler(data.handler)
        now = self._clock()
        with conflict_on_duplicate(ABILITY.duplicate(data.name)):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, skillset_id)
                row = await child(repo, Ability, skillset_id, ability_id, "ability")
                if data.name is not UNSET:
                    await self._rename(ABILITY, repo, row, data.name)
                if data.title is not UNSET:
                    row.title = data.title
                if data.description is not UNSET:
                    row.description = data.description
                if data.input_schema is not UNSET:
                    row.input_schema = data.input_schema
                if data.output_schema is not UNSET:
                    row.output_schema = data.output_schema
                if data.annotations is not UNSET:
                    row.annotations = data.annotations
                if data.handler is not UNSET:
                    row.handler = convert.handler_json(data.handler)
                if data.meta is not UNSET:
                    row.meta = data.meta
                row.updated_at = now
                await repo.flush()
                revision = await self._bump_revision_if_it_fits(repo, skillset_id, now)
        await self._publish(
            [skillset_event(skillset_id, owner_id, "updated", "ability", ability_id, None, revision)]
        )
        return schemas.Created(id=ability_id)
