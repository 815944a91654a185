"""Skillsets (their abilities, resources and prompts have modules of their own)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from msgspec import UNSET

from skillrelay_common import ids
from skillrelay_registry import convert, schemas, validation
from skillrelay_registry.errors import ConflictError
from skillrelay_registry.models import Blueprint, Integration, Skillset
from skillrelay_registry.pagination import ListQuery, Page
from skillrelay_registry.usecases.base import (
    UseCaseBase,
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
