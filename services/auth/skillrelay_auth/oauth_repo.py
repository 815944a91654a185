"""PostgreSQL storage of the OAuth authorization server (SQLAlchemy Core over asyncpg).

Every secret handed to a client (codes, refresh tokens, client secrets) is stored only as its SHA-256.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from skillrelay_auth.models import (
    authorization_codes,
    authorization_requests,
    consents,
    contacts,
    oauth_clients,
    refresh_tokens,
    signing_keys,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ClientRecord:
    client_id: str
    integration_id: str | None
    kind: str
    client_secret_hash: str | None
    token_endpoint_auth_method: str
    redirect_uris: list[str]
    grant_types: list[str]
    client_name: str | None
    metadata: dict[str, Any]
    refreshed_at: datetime


@dataclass(frozen=True)
class AuthorizationRequest:
    id: str
    integration_id: str
    client_id: str
    redirect_uri: str
    state: str | None
    code_challenge: str
    scope: str
    resource: str
    force_consent: bool
    upstream_state: str
    upstream_verifier: str
    upstream_nonce: str
    binding_hash: str
    subject: str | None
    contact_id: str | None
    expires_at: datetime


@dataclass(frozen=True)
class CodeRecord:
    integration_id: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str
    resource: str
    subject: str
    contact_id: str
    generation: int
    family_id: str
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class RefreshRecord:
    token_hash: str
    family_id: str
    integration_id: str
    client_id: str
    subject: str
    contact_id: str
    scope: str
    resource: str
    generation: int
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class RevokedAccess:
    integration_id: str
    jti: str
    expires_at: datetime


@dataclass(frozen=True)
class KeyRecord:
    kid: str
    private_key: str
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None


class OAuthStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    # -- signing keys ----------------------------------------------------------------------------

    async def signing_keys(self) -> list[KeyRecord]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(signing_keys).order_by(signing_keys.c.created_at.desc()))).all()
        return [KeyRecord(r.kid, r.private_key, r.public_jwk, r.created_at, r.retired_at) for r in rows]

    async def add_signing_key(
        self, kid: str, private_key: str, public_jwk: dict[str, Any], *, only_if_none: bool
    ) -> bool:
        """Store a new active key and retire the others. ``only_if_none``: skip when an active key exists
        (replicas starting together create one key, not several)."""
        now = utcnow()
        async with self._engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(b"auth.signing_keys")}
            )
            if only_if_none:
                active = (
                    await conn.execute(select(signing_keys.c.kid).where(signing_keys.c.retired_at.is_(None)))
                ).first()
                if active is not None:
                    return False
            await conn.execute(
                update(signing_keys).where(signing_keys.c.retired_at.is_(None)).values(retired_at=now)
            )
            await conn.execute(
                insert(signing_keys).values(
                    kid=kid, private_key=private_key, public_jwk=public_jwk, created_at=now, retired_at=None
                )
            )
        return True

    async def drop_keys_retired_before(self, moment: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(signing_keys).where(signing_keys.c.retired_at < moment))

    # -- clients ---------------------------------------------------------------------------------

    async def client(self, client_id: str) -> ClientRecord | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(oauth_clients).where(oauth_clients.c.client_id == client_id))
            ).first()
        if row is None:
            return None
        return ClientRecord(
            row.client_id,
            row.integration_id,
            row.kind,
            row.client_secret_hash,
            row.token_endpoint_auth_method,
            list(row.redirect_uris),
            list(row.grant_types),
            row.client_name,
            dict(row.metadata),
            row.refreshed_at,
        )

    async def save_client(self, record: ClientRecord) -> None:
        values = {
            "client_id": record.client_id,
            "integration_id": record.integration_id,
            "kind": record.kind,
            "client_secret_hash": record.client_secret_hash,
            "token_endpoint_auth_method": record.token_endpoint_auth_method,
            "redirect_uris": record.redirect_uris,
            "grant_types": record.grant_types,
            "client_name": record.client_name,
            "metadata": record.metadata,
            "refreshed_at": record.refreshed_at,
        }
        statement = insert(oauth_clients).values(created_at=utcnow(), **values)
        statement = statement.on_conflict_do_update(index_elements=[oauth_clients.c.client_id], set_=values)
        async with self._engine.begin() as conn:
            await conn.execute(statement)

    async def forget_unused_clients(self, registered_before: datetime) -> int:
        """Delete dynamically registered clients never used (no code ever issued to them) that were
        registered before ``registered_before``; returns how many. Open registration would otherwise
        keep every abandoned one forever."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(oauth_clients).where(
                    oauth_clients.c.kind == "registered",
                    oauth_clients.c.used_at.is_(None),
                    oauth_clients.c.created_at < registered_before,
                )
            )
        return int(result.rowcount)

    # -- authorization requests ------------------------------------------------------------------

    async def save_request(self, request: AuthorizationRequest) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(authorization_requests).where(authorization_requests.c.expires_at < utcnow())
            )
            await conn.execute(insert(authorization_requests).values(created_at=utcnow(), **request.__dict__))

    async def request_by_upstream_state(self, upstream_state: str) -> AuthorizationRequest | None:
        return await self._request(authorization_requests.c.upstream_state == upstream_state)

    async def request_by_id(self, request_id: str) -> AuthorizationRequest | None:
        return await self._request(authorization_requests.c.id == request_id)

    async def _request(self, condition: Any) -> AuthorizationRequest | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(authorization_requests).where(
                        condition, authorization_requests.c.expires_at > utcnow()
                    )
                )
            ).first()
        if row is None:
            return None
        fields = {name: getattr(row, name) for name in AuthorizationRequest.__dataclass_fields__}
        return AuthorizationRequest(**fields)

    async def set_request_user(self, request_id: str, subject: str, contact_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(authorization_requests)
                .where(authorization_requests.c.id == request_id)
                .values(subject=subject, contact_id=contact_id, upstream_state=f"used:{request_id}")
            )

    async def take_request(self, request_id: str) -> bool:
        """Delete the request; False when someone else already finished it (double submit)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(authorization_requests).where(authorization_requests.c.id == request_id)
            )
        return bool(result.rowcount)

    # -- contacts and consents -------------------------------------------------------------------

    async def upsert_contact(
        self,
        contact_id: str,
        owner_id: str,
        connection_id: str,
        subject: str,
        email: str | None,
        name: str | None,
    ) -> str:
        now = utcnow()
        statement = (
            insert(contacts)
            .values(
                id=contact_id,
                owner_id=owner_id,
                connection_id=connection_id,
                subject=subject,
                email=email,
                name=name,
                first_seen_at=now,
                last_seen_at=now,
            )
            .on_conflict_do_update(
                index_elements=[contacts.c.connection_id, contacts.c.subject],
                set_={
                    "last_seen_at": now,
                    "email": func.coalesce(email, contacts.c.email),
                    "name": func.coalesce(name, contacts.c.name),
                },
            )
            .returning(contacts.c.id)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(statement)).one()
        return str(row.id)

    async def has_consent(self, integration_id: str, contact_id: str, client_id: str, scope: str) -> bool:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(consents.c.scope).where(
                        consents.c.integration_id == integration_id,
                        consents.c.contact_id == contact_id,
                        consents.c.client_id == client_id,
                    )
                )
            ).first()
        return row is not None and set(scope.split()) <= set(str(row.scope).split())

    async def grant_consent(self, integration_id: str, contact_id: str, client_id: str, scope: str) -> None:
        statement = (
            insert(consents)
            .values(
                integration_id=integration_id,
                contact_id=contact_id,
                client_id=client_id,
                scope=scope,
                granted_at=utcnow(),
            )
            .on_conflict_do_update(
                index_elements=[consents.c.integration_id, consents.c.contact_id, consents.c.client_id],
                set_={"scope": scope, "granted_at": utcnow()},
            )
        )
        async with self._engine.begin() as conn:
            await conn.execute(statement)

    # -- codes -----------------------------------------------------------------------------------

    async def save_code(self, code_hash: str, record: CodeRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(authorization_codes).where(
                    authorization_codes.c.expires_at < utcnow() - timedelta(hours=1)
                )
            )
            await conn.execute(insert(authorization_codes).values(code_hash=code_hash, **record.__dict__))
            await conn.execute(
                update(oauth_clients)
                .where(oauth_clients.c.client_id == record.client_id, oauth_clients.c.used_at.is_(None))
                .values(used_at=utcnow())
            )

    async def use_code(self, code_hash: str) -> CodeRecord | None:
        """Mark the code used and return it as it was (``used_at`` set when it had been used before)."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(authorization_codes)
                    .where(authorization_codes.c.code_hash == code_hash)
                    .with_for_update()
                )
            ).first()
            if row is None:
                return None
            if row.used_at is None:
                await conn.execute(
                    update(authorization_codes)
                    .where(authorization_codes.c.code_hash == code_hash)
                    .values(used_at=utcnow())
                )
        fields = {name: getattr(row, name) for name in CodeRecord.__dataclass_fields__}
        return CodeRecord(**fields)

    # -- refresh tokens --------------------------------------------------------------------------

    async def save_refresh(
        self,
        token_hash: str,
        *,
        family_id: str,
        integration_id: str,
        client_id: str,
        subject: str,
        contact_id: str,
        scope: str,
        resource: str,
        generation: int,
        access_jti: str,
        access_expires_at: datetime,
        expires_at: datetime,
    ) -> None:
        async with self._engine.begin() as conn:
            # Purge what expired a day ago (indexed; a day's grace keeps reuse detection for late replays).
            await conn.execute(
                delete(refresh_tokens).where(refresh_tokens.c.expires_at < utcnow() - timedelta(days=1))
            )
            await conn.execute(
                insert(refresh_tokens).values(
                    token_hash=token_hash,
                    family_id=family_id,
                    integration_id=integration_id,
                    client_id=client_id,
                    subject=subject,
                    contact_id=contact_id,
                    scope=scope,
                    resource=resource,
                    generation=generation,
                    access_jti=access_jti,
                    access_expires_at=access_expires_at,
                    created_at=utcnow(),
                    expires_at=expires_at,
                )
            )

    async def use_refresh(self, token_hash: str) -> RefreshRecord | None:
        """Mark the refresh token used (rotation) and return it as it was before."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash).with_for_update()
                )
            ).first()
            if row is None:
                return None
            if row.used_at is None:
                await conn.execute(
                    update(refresh_tokens)
                    .where(refresh_tokens.c.token_hash == token_hash)
                    .values(used_at=utcnow())
                )
        fields = {name: getattr(row, name) for name in RefreshRecord.__dataclass_fields__}
        return RefreshRecord(**fields)

    async def refresh_by_hash(self, token_hash: str) -> RefreshRecord | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash))
            ).first()
        if row is None:
            return None
        fields = {name: getattr(row, name) for name in RefreshRecord.__dataclass_fields__}
        return RefreshRecord(**fields)

    async def revoke_family(self, family_id: str) -> list[RevokedAccess]:
        """Revoke every refresh token of the family; the access tokens issued with them that may still
        be valid (for the edges' deny lists)."""
        now = utcnow()
        async with self._engine.begin() as conn:
            await conn.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            rows = (
                await conn.execute(
                    select(
                        refresh_tokens.c.integration_id,
                        refresh_tokens.c.access_jti,
                        refresh_tokens.c.access_expires_at,
                    ).where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.access_expires_at > now)
                )
            ).all()
        return [RevokedAccess(r.integration_id, r.access_jti, r.access_expires_at) for r in rows]

    async def revoke_integration(self, integration_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(refresh_tokens)
                .where(
                    refresh_tokens.c.integration_id == integration_id, refresh_tokens.c.revoked_at.is_(None)
                )
                .values(revoked_at=utcnow())
            )
            await conn.execute(
                delete(authorization_codes).where(authorization_codes.c.integration_id == integration_id)
            )
            await conn.execute(
                delete(oauth_clients).where(
                    and_(
                        oauth_clients.c.integration_id == integration_id,
                        or_(oauth_clients.c.kind == "registered"),
                    )
                )
            )
