"""One integration's authorization server: Authlib's server with this project's grants, endpoints and
tokens. Built per request (cheap: a few registrations), so every lookup is scoped to the integration."""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import jwt
from authlib.oauth2.rfc9207 import IssuerParameter

from skillrelay_auth.oauth.clients import OAuthClient
from skillrelay_auth.oauth.errors import not_found
from skillrelay_auth.oauth.framework import LitestarAuthorizationServer, on_loop
from skillrelay_auth.oauth.metadata import server_metadata
from skillrelay_auth.oauth.parts import OAuthParts, RegistryLookup
from skillrelay_auth.oauth.policy import SUPPORTED_SCOPES
from skillrelay_auth.oauth.registration import Registration
from skillrelay_auth.oauth.revoke import Revocation
from skillrelay_auth.oauth.token import (
    CodeGrant,
    Grantee,
    McpAuthorizationRequest,
    RotatingRefreshGrant,
    S256CodeChallenge,
)
from skillrelay_auth.oauth_repo import utcnow
from skillrelay_common.ids import hash_secret, new_secret
from skillrelay_common.schemas.registry import IntegrationInfo


class _Issuer(IssuerParameter):  # type: ignore[misc]
    def __init__(self, issuer: str) -> None:
        self._issuer = issuer

    def get_issuer(self) -> str:
        return self._issuer


class IntegrationServer(LitestarAuthorizationServer):
    def __init__(self, parts: OAuthParts, integration: IntegrationInfo) -> None:
        super().__init__(scopes_supported=list(SUPPORTED_SCOPES))
        self.parts = parts
        self.integration = integration
        self.issuer = parts.config.issuer(integration.id)
        self.granted: Grantee | None = None  # who the token endpoint issued tokens to, for the audit
        self.register_token_generator("default", self._generate_token)
        self.register_grant(
            CodeGrant,
            [
                S256CodeChallenge(required=True),
                McpAuthorizationRequest(parts.config.resource(integration.id)),
            ],
        )
        self.register_grant(RotatingRefreshGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Registration(self))
        _Issuer(self.issuer)(self)  # RFC 9207: iss on every authorization response, errors too

    def metadata(self) -> dict[str, Any]:
        return server_metadata(self.issuer)

    def query_client(self, client_id: str) -> OAuthClient | None:
        record = on_loop(self.parts.clients.find, self.integration.id, client_id)
        return OAuthClient(record) if record is not None else None

    def _generate_token(
        self,
        grant_type: str,
        client: OAuthClient,
        user: Grantee,
        scope: str,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """An ES256 JWT access token the edge verifies locally, and a refresh token (a random secret)."""
        now, ttl = int(time.time()), self.parts.config.access_token_ttl
        claims = {
            "iss": self.issuer,
            "aud": user.resource,
            "sub": user.subject,
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(16),
            "client_id": client.client_id,
            "scope": scope,
            "gen": self.integration.oauth_generation,
            "cid": user.contact_id,
        }
        token: dict[str, Any] = {
            "access_token": on_loop(self.parts.keys.sign, claims),
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": scope,
        }
        if include_refresh_token:
            token["refresh_token"] = new_secret("sr_rt", 32)
        return token

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        grantee: Grantee = request.user
        # A client without the refresh grant gets no refresh token, but its record is kept all the
        # same: it ties the access token's jti to the grant, so revoking the grant reaches it.
        refresh = token.get("refresh_token") or new_secret("sr_rt", 32)
        access = jwt.decode(token["access_token"], options={"verify_signature": False})
        store, config = self.parts.store, self.parts.config
        save = partial(
            store.save_refresh,
            hash_secret(refresh),
            family_id=grantee.family_id,
            integration_id=self.integration.id,
            client_id=request.client.client_id,
            subject=grantee.subject,
            contact_id=grantee.contact_id,
            scope=token["scope"],
            resource=grantee.resource,
            generation=self.integration.oauth_generation,
            access_jti=access["jti"],
            access_expires_at=datetime.fromtimestamp(access["exp"], utcnow().tzinfo),
            expires_at=utcnow() + timedelta(seconds=config.refresh_token_ttl),
        )
        on_loop(save)
        self.granted = grantee


class Issuers:
    """Finds an integration's authorization server; 404 when it has none (no OAuth connection)."""

    def __init__(self, parts: OAuthParts, registry: RegistryLookup) -> None:
        self.parts = parts
        self.registry = registry

    async def server(self, integration_id: str) -> IntegrationServer:
        integration = await self.registry.integration(integration_id)
        if integration is None or not integration.o_auth_connection_id:
            raise not_found()
        return IntegrationServer(self.parts, integration)
