"""Skillsets and their abilities (MCP tools)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from msgspec import UNSET

from skillrelay_common import ids
from skillrelay_registry import convert, schemas, validation
from skillrelay_registry.errors import ConflictError
from skillrelay_registry.models import Ability, Blueprint, Integration, Skillset
from skillrelay_registry.pagination import ListQuery, Page
from skillrelay_registry.usecases.base import (
    UseCaseBase,
    child,
    child_fetch,
    conflict_on_duplicate,
    ensure_skillset_fits,
    owned,
    owned_fetch,
    skillset_event,
)


class SkillsetUseCases(UseCaseBase):
    # -- skillsets -------------------------------------------------------------------------------

    async def create_skillset(self, owner_id: str, data: schemas.SkillsetCreate) -> schemas.Created:
        now = self._clock()
        row = Skillset(
            id=ids.new_id(ids.SKILLSET),
            owner_id=owner_id,
            name=validation.require_name(data.name),
            description=data.description,
            blueprint_id=data.blueprint_id,
            meta=data.meta,
            revision=1,
            created_at=now,
            updated_at=now,
        )
        async with self._unit() as repo:
            if data.blueprint_id is not None:
                await owned(repo, Blueprint, owner_id, data.blueprint_id, "blueprint")
            repo.add(row)
            await repo.flush()
            await ensure_skillset_fits(repo, row.id)
        await self._publish([skillset_event(row.id, owner_id, "created", "skillset", None, None, 1)])
        return schemas.Created(id=row.id)

    async def list_skillsets(self, owner_id: str, query: ListQuery) -> Page[schemas.SkillsetOut]:
        return await self._page(owned_fetch(Skillset, owner_id), query, convert.skillset_out)

    def stream_skillsets(self, owner_id: str, query: ListQuery) -> AsyncIterator[schemas.SkillsetOut]:
        return self._stream(owned_fetch(Skillset, owner_id), query, convert.skillset_out)

    async def get_skillset(self, owner_id: str, skillset_id: str) -> schemas.SkillsetOut:
        async with self._unit() as repo:
            return convert.skillset_out(await owned(repo, Skillset, owner_id, skillset_id, "skillset"))

    async def update_skillset(
        self, owner_id: str, skillset_id: str, data: schemas.SkillsetUpdate
    ) -> schemas.Created:
        async with self._unit() as repo:
            row = await owned(repo, Skillset, owner_id, skillset_id, "skillset", lock=True)
            if data.name is not UNSET:
                row.name = validation.require_name(data.name)
            if data.description is not UNSET:
                row.description = data.description
            if data.blueprint_id is not UNSET:
                if data.blueprint_id is not None:
                    await owned(repo, Blueprint, owner_id, data.blueprint_id, "blueprint")
                row.blueprint_id = data.blueprint_id
            if data.meta is not UNSET:
                row.meta = data.meta
            row.revision += 1
            row.updated_at = self._clock()
            revision = row.revision
            await ensure_skillset_fits(repo, skillset_id)
        await self._publish(
            [skillset_event(skillset_id, owner_id, "updated", "skillset", None, None, revision)]
        )
        return schemas.Created(id=skillset_id)

    async def delete_skillset(self, owner_id: str, skillset_id: str) -> schemas.Created:
        """Refused (409) while an integration serves the skillset; abilities, resources and prompts go
        with it."""
        async with self._unit() as repo:
            row = await owned(repo, Skillset, owner_id, skillset_id, "skillset", lock=True)
            in_use = await repo.count_integrations(Integration.skillset_id == skillset_id)
            if in_use:
                raise ConflictError(
                    f"skillset is used by {in_use} integration(s): delete them or point them elsewhere first"
                )
            revision = row.revision + 1
            await repo.delete(row)
        await self._publish(
            [skillset_event(skillset_id, owner_id, "deleted", "skillset", None, None, revision)]
        )
        return schemas.Created(id=skillset_id)

    # -- abilities -------------------------------------------------------------------------------

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
        return await self._insert_named_child(
            owner_id, row, "ability", f"an ability named {data.name!r} already exists in this skillset"
        )

    async def list_abilities(
        self, owner_id: str, skillset_id: str, query: ListQuery
    ) -> Page[schemas.AbilityOut]:
        await self._require_skillset(owner_id, skillset_id)
        return await self._page(child_fetch(Ability, skillset_id), query, convert.ability_out)

    async def stream_abilities(
        self, owner_id: str, skillset_id: str, query: ListQuery
    ) -> AsyncIterator[schemas.AbilityOut]:
        await self._require_skillset(owner_id, skillset_id)
        return self._stream(child_fetch(Ability, skillset_id), query, convert.ability_out)

    async def get_ability(self, owner_id: str, skillset_id: str, ability_id: str) -> schemas.AbilityOut:
        async with self._unit() as repo:
            await owned(repo, Skillset, owner_id, skillset_id, "skillset")
            return convert.ability_out(await child(repo, Ability, skillset_id, ability_id, "ability"))

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
        now = self._clock()
        duplicate = f"an ability named {data.name!r} already exists in this skillset"
        with conflict_on_duplicate(duplicate):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, skillset_id)
                row = await child(repo, Ability, skillset_id, ability_id, "ability")
                if data.name is not UNSET:
                    await self._rename_child(repo, row, data.name, duplicate)
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

    async def delete_ability(self, owner_id: str, skillset_id: str, ability_id: str) -> schemas.Created:
        return await self._delete_child(owner_id, skillset_id, Ability, ability_id, "ability")
