"""OAuth connections: the client secret is encrypted at rest and leaves only over NATS, to auth."""

from __future__ import annotations

from collections.abc import AsyncIterator

from msgspec import UNSET

from skillrelay_common import ids
from skillrelay_common.schemas.registry import OAuthConnectionSecret
from skillrelay_registry import convert, schemas, validation
from skillrelay_registry.errors import ConflictError, InvalidInput
from skillrelay_registry.models import Integration, OAuthConnection
from skillrelay_registry.pagination import ListQuery, Page
from skillrelay_registry.usecases.base import UseCaseBase, owned, owned_event, owned_fetch


class OAuthConnectionUseCases(UseCaseBase):
    # -- OAuth connections -----------------------------------------------------------------------

    async def create_oauth_connection(
        self, owner_id: str, data: schemas.OAuthConnectionCreate
    ) -> schemas.Created:
        validation.require_name(data.name)
        validation.require_name(data.client_id, "clientId")
        if not data.client_secret:
            raise InvalidInput("clientSecret must not be empty")
        validation.oauth_endpoints(
            issuer=data.issuer,
            authorization_url=data.authorization_url,
            token_url=data.token_url,
            userinfo_url=data.userinfo_url,
        )
        now = self._clock()
        row = OAuthConnection(
            id=ids.new_id(ids.OAUTH_CONNECTION),
            owner_id=owner_id,
            name=data.name,
            description=data.description,
            client_id=data.client_id,
            client_secret_encrypted=self._secrets.encrypt(data.client_secret),
            scopes=list(data.scopes),
            issuer=data.issuer,
            authorization_url=data.authorization_url,
            token_url=data.token_url,
            userinfo_url=data.userinfo_url,
            meta=data.meta,
            created_at=now,
            updated_at=now,
        )
        async with self._unit() as repo:
            repo.add(row)
        await self._publish([owned_event("oauthconnection", row.id, owner_id, "created")])
        return schemas.Created(id=row.id)

    async def list_oauth_connections(
        self, owner_id: str, query: ListQuery
    ) -> Page[schemas.OAuthConnectionOut]:
        return await self._page(owned_fetch(OAuthConnection, owner_id), query, convert.oauth_connection_out)

    def stream_oauth_connections(
        self, owner_id: str, query: ListQuery
    ) -> AsyncIterator[schemas.OAuthConnectionOut]:
        return self._stream(owned_fetch(OAuthConnection, owner_id), query, convert.oauth_connection_out)

    async def get_oauth_connection(self, owner_id: str, connection_id: str) -> schemas.OAuthConnectionOut:
        async with self._unit() as repo:
            row = await owned(repo, OAuthConnection, owner_id, connection_id, "OAuth connection")
            return convert.oauth_connection_out(row)

    async def update_oauth_connection(
        self, owner_id: str, connection_id: str, data: schemas.OAuthConnectionUpdate
    ) -> schemas.Created:
        async with self._unit() as repo:
            row = await owned(repo, OAuthConnection, owner_id, connection_id, "OAuth connection")
            if data.name is not UNSET:
                row.name = validation.require_name(data.name)
            if data.description is not UNSET:
                row.description = data.description
            if data.client_id is not UNSET:
                row.client_id = validation.require_name(data.client_id, "clientId")
            if data.client_secret is not UNSET:
                if not data.client_secret:
                    raise InvalidInput("clientSecret must not be empty")
                row.client_secret_encrypted = self._secrets.encrypt(data.client_secret)
            if data.scopes is not UNSET:
                row.scopes = list(data.scopes)
            for field in ("issuer", "authorization_url", "token_url", "userinfo_url"):
                value = getattr(data, field)
                if value is not UNSET:
                    setattr(row, field, value)
            if data.meta is not UNSET:
                row.meta = data.meta
            validation.oauth_endpoints(
                issuer=row.issuer,
                authorization_url=row.authorization_url,
                token_url=row.token_url,
                userinfo_url=row.userinfo_url,
            )
            row.updated_at = self._clock()
        await self._publish([owned_event("oauthconnection", connection_id, owner_id, "updated")])
        return schemas.Created(id=connection_id)

    async def delete_oauth_connection(self, owner_id: str, connection_id: str) -> schemas.Created:
        """Refused (409) while an integration is gated by it: deleting it must not open them up."""
        async with self._unit() as repo:
            row = await owned(repo, OAuthConnection, owner_id, connection_id, "OAuth connection")
            in_use = await repo.count_integrations(Integration.oauth_connection_id == connection_id)
            if in_use:
                raise ConflictError(f"OAuth connection is used by {in_use} integration(s)")
            await repo.delete(row)
        await self._publish([owned_event("oauthconnection", connection_id, owner_id, "deleted")])
        return schemas.Created(id=connection_id)

    async def oauth_connection_secret(self, connection_id: str) -> OAuthConnectionSecret | None:
        """For the auth service over NATS: the connection with its decrypted client secret."""
        async with self._unit() as repo:
            row = await repo.oauth_connection(connection_id)
            if row is None:
                return None
            return OAuthConnectionSecret(
                id=row.id,
                owner_id=row.owner_id,
                name=row.name,
                client_id=row.client_id,
                client_secret=self._secrets.decrypt(row.client_secret_encrypted),
                scopes=list(row.scopes),
                issuer=row.issuer,
                authorization_url=row.authorization_url,
                token_url=row.token_url,
                userinfo_url=row.userinfo_url,
            )
