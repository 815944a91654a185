"""Token revocation (RFC 7009) on Authlib: a refresh token ends its whole grant; an access token is
refused by every edge replica until it expires. Unknown tokens are not an error (section 2.2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authlib.oauth2.rfc7009 import RevocationEndpoint

from skillrelay_auth.oauth.clients import OAuthClient
from skillrelay_auth.oauth.errors import oauth_error
from skillrelay_auth.oauth.framework import Answer, FormRequest, in_thread, on_loop
from skillrelay_auth.oauth.parts import OAuthParts
from skillrelay_auth.oauth.policy import AUTH_METHODS
from skillrelay_auth.oauth_repo import RevokedAccess, utcnow
from skillrelay_common.ids import hash_secret
from skillrelay_common.schemas.registry import IntegrationInfo


@dataclass(frozen=True)
class RevocableToken:
    client_id: str
    family_id: str | None = None  # a refresh token
    access: RevokedAccess | None = None  # an access token

    def check_client(self, client: OAuthClient) -> bool:
        return bool(client.client_id == self.client_id)


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    def check_params(self, request: Any, client: OAuthClient) -> None:
        if request.form.get("token_type_hint") not in (None, *self.SUPPORTED_TOKEN_TYPES):
            # Authlib's error class answers 401; an unknown hint is a bad request (RFC 6749 section 5.2).
            raise oauth_error(
                "unsupported_token_type", "token_type_hint must be access_token or refresh_token"
            )
        super().check_params(request, client)

    def query_token(self, token_string: str, token_type_hint: str | None) -> RevocableToken | None:
        return on_loop(find_token, self.server.parts, self.server.integration, token_string)

    def revoke_token(self, token: RevocableToken, request: Any) -> None:
        on_loop(revoke, self.server.parts, token)


async def find_token(parts: OAuthParts, integration: IntegrationInfo, token: str) -> RevocableToken | None:
    """One of this issuer's refresh tokens (by hash) or access tokens (signature checked)."""
    record = await parts.store.refresh_by_hash(hash_secret(token))
    if record is not None:
        if record.integration_id != integration.id:
            return None
        return RevocableToken(record.client_id, family_id=record.family_id)
    claims = await parts.keys.decode(token)
    if (
        claims is None
        or claims.get("iss") != parts.config.issuer(integration.id)
        or not isinstance(claims.get("client_id"), str)
        or not isinstance(claims.get("jti"), str)
        or not isinstance(claims.get("exp"), int)
    ):
        return None
    expires = datetime.fromtimestamp(claims["exp"], utcnow().tzinfo)
    return RevocableToken(claims["client_id"], access=RevokedAccess(integration.id, claims["jti"], expires))


async def revoke(parts: OAuthParts, token: RevocableToken) -> None:
    if token.family_id is not None:
        await parts.revoke_family(token.family_id)
    if token.access is not None:
        await parts.revoker.revoke_access([token.access])


async def revoke_answer(server: Any, headers: Mapping[str, str], form: dict[str, str]) -> Answer:
    request = FormRequest("POST", f"{server.issuer}/revoke", headers, form)
    answer: Answer = await in_thread(server.create_endpoint_response, Revocation.ENDPOINT_NAME, request)
    return answer
