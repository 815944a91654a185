"""Users with their API keys, and blueprints."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass

from msgspec import UNSET

from skillrelay_common import ids
from skillrelay_registry import convert, schemas, validation
from skillrelay_registry.errors import Unauthorized
from skillrelay_registry.models import Blueprint, User
from skillrelay_registry.pagination import ListQuery, Page
from skillrelay_registry.usecases.base import API_KEY_PREFIX, UseCaseBase, owned, owned_event, owned_fetch


@dataclass(frozen=True)
class Identity:
    id: str
    name: str


class AccountUseCases(UseCaseBase):
    # -- users and API keys ----------------------------------------------------------------------

    def is_admin_token(self, token: str | None) -> bool:
        expected = self._settings.admin_token
        return bool(token and expected and hmac.compare_digest(token.encode(), expected.encode()))

    async def create_user(self, data: schemas.UserCreate) -> schemas.UserCreated:
        name = validation.require_name(data.name)
        api_key = ids.new_secret(API_KEY_PREFIX, 32)
        now = self._clock()
        user = User(
            id=ids.new_id(ids.USER),
            name=name,
            api_key_hash=ids.hash_secret(api_key),
            created_at=now,
            updated_at=now,
        )
        async with self._unit() as repo:
            repo.add(user)
        await self._publish([owned_event("user", user.id, user.id, "created")])
        return schemas.UserCreated(id=user.id, api_key=api_key)

    async def authenticate(self, api_key: str | None) -> str:
        """The owner id behind an API key, or ``Unauthorized``."""
        return (await self.identify(api_key)).id

    async def identify(self, api_key: str | None) -> Identity:
        """Who is behind an API key (id and name), or ``Unauthorized``."""
        if not api_key:
            raise Unauthorized("send Authorization: Bearer <API key>")
        async with self._unit() as repo:
            user = await repo.user_by_key_hash(ids.hash_secret(api_key))
        if user is None:
            raise Unauthorized("the API key is not valid")
        return Identity(id=user.id, name=user.name)

    # -- blueprints ------------------------------------------------------------------------------

    async def create_blueprint(self, owner_id: str, data: schemas.BlueprintCreate) -> schemas.Created:
        now = self._clock()
        row = Blueprint(
            id=ids.new_id(ids.BLUEPRINT),
            owner_id=owner_id,
            name=validation.require_name(data.name),
            description=data.description,
            meta=data.meta,
            created_at=now,
            updated_at=now,
        )
        async with self._unit() as repo:
            repo.add(row)
        await self._publish([owned_event("blueprint", row.id, owner_id, "created")])
        return schemas.Created(id=row.id)

    async def list_blueprints(self, owner_id: str, query: ListQuery) -> Page[schemas.BlueprintOut]:
        return await self._page(owned_fetch(Blueprint, owner_id), query, convert.blueprint_out)

    def stream_blueprints(self, owner_id: str, query: ListQuery) -> AsyncIterator[schemas.BlueprintOut]:
        return self._stream(owned_fetch(Blueprint, owner_id), query, convert.blueprint_out)

    async def get_blueprint(self, owner_id: str, blueprint_id: str) -> schemas.BlueprintOut:
        async with self._unit() as repo:
            return convert.blueprint_out(await owned(repo, Blueprint, owner_id, blueprint_id, "blueprint"))

    async def update_blueprint(
        self, owner_id: str, blueprint_id: str, data: schemas.BlueprintUpdate
    ) -> schemas.Created:
        async with self._unit() as repo:
            row = await owned(repo, Blueprint, owner_id, blueprint_id, "blueprint")
            if data.name is not UNSET:
                row.name = validation.require_name(data.name)
            if data.description is not UNSET:
                row.description = data.description
            if data.meta is not UNSET:
                row.meta = data.meta
            row.updated_at = self._clock()
        await self._publish([owned_event("blueprint", row.id, owner_id, "updated")])
        return schemas.Created(id=row.id)

    async def delete_blueprint(self, owner_id: str, blueprint_id: str) -> schemas.Created:
        """Skillsets and integrations that referred to it keep existing, without a blueprint."""
        async with self._unit() as repo:
            row = await owned(repo, Blueprint, owner_id, blueprint_id, "blueprint")
            await repo.delete(row)
        await self._publish([owned_event("blueprint", blueprint_id, owner_id, "deleted")])
        return schemas.Created(id=blueprint_id)
