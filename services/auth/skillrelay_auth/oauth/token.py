"""The token endpoint's grants on Authlib: authorization code with PKCE (S256 only) and refresh token
with rotation. Codes and refresh tokens are consumed atomically when read; presenting a used one revokes
everything issued from the same grant (its family)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, TokenMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7636 import CodeChallenge

from skillrelay_auth.oauth.clients import OAuthClient
from skillrelay_auth.oauth.errors import InvalidTargetError, LoginRequiredError
from skillrelay_auth.oauth.framework import Answer, FormRequest, in_thread, on_loop
from skillrelay_auth.oauth.parts import OAuthParts
from skillrelay_auth.oauth.policy import AUTH_METHODS
from skillrelay_auth.oauth_repo import CodeRecord, RefreshRecord, utcnow
from skillrelay_common.ids import hash_secret
from skillrelay_common.schemas.registry import IntegrationInfo


@dataclass(frozen=True)
class Grantee:
    """The user a grant is for, and the grant's family (every token issued from one authorization)."""

    subject: str
    contact_id: str
    family_id: str
    resource: str

    def get_user_id(self) -> str:
        return self.subject


class StoredCode(AuthorizationCodeMixin):  # type: ignore[misc]
    code_challenge_method = "S256"

    def __init__(self, record: CodeRecord) -> None:
        self.record = record
        self.code_challenge = record.code_challenge
        self.grantee = Grantee(record.subject, record.contact_id, record.family_id, record.resource)

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope


class StoredRefresh(TokenMixin):  # type: ignore[misc]
    def __init__(self, record: RefreshRecord) -> None:
        self.record = record
        self.grantee = Grantee(record.subject, record.contact_id, record.family_id, record.resource)

    def check_client(self, client: OAuthClient) -> bool:
        return bool(client.client_id == self.record.client_id)

    def get_scope(self) -> str:
        return self.record.scope

    def get_expires_in(self) -> int:
        return max(0, int((self.record.expires_at - utcnow()).total_seconds()))

    def is_expired(self) -> bool:
        return self.record.expires_at < utcnow()

    def is_revoked(self) -> bool:
        return self.record.revoked_at is not None


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE is required of every client, and only S256 is accepted (OAuth 2.1, MCP authorization)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with method S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class McpAuthorizationRequest:
    """Authorization-request checks of MCP: the resource (RFC 8707) is this integration's endpoint, and
    ``prompt=none`` cannot be honoured (the user always logs in at the identity provider)."""

    def __init__(self, expected_resource: str) -> None:
        self.expected_resource = expected_resource

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    def validate(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if (data.get("resource") or self.expected_resource) != self.expected_resource:
            raise InvalidTargetError("resource must be this integration's MCP endpoint")
        if data.get("prompt") == "none":
            raise LoginRequiredError("the user must log in at the identity provider")


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def save_authorization_code(self, code: str, request: Any) -> None:
        on_loop(save_code, self.server.parts, self.server.integration, code, request)

    def query_authorization_code(self, code: str, client: OAuthClient) -> StoredCode:
        resource = self.request.form.get("resource")
        return on_loop(consume_code, self.server.parts, self.server.integration, code, client, resource)

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        """Nothing left to do: the code was marked used when it was read."""

    def authenticate_user(self, authorization_code: StoredCode) -> Grantee:
        return authorization_code.grantee


class RotatingRefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every refresh answers a new refresh token

    def authenticate_refresh_token(self, refresh_token: str) -> StoredRefresh:
        resource = self.request.form.get("resource")
        parts, integration = self.server.parts, self.server.integration
        return on_loop(consume_refresh, parts, integration, refresh_token, self.request.client, resource)

    def authenticate_user(self, refresh_token: StoredRefresh) -> Grantee:
        return refresh_token.grantee

    def revoke_old_credential(self, refresh_token: StoredRefresh) -> None:
        """Nothing left to do: the refresh token was marked used when it was read."""


async def save_code(parts: OAuthParts, integration: IntegrationInfo, code: str, request: Any) -> None:
    data, grantee = request.payload.data, request.user
    record = CodeRecord(
        integration_id=integration.id,
        client_id=request.client.client_id,
        redirect_uri=data["redirect_uri"],
        code_challenge=data["code_challenge"],
        scope=request.scope,
        resource=grantee.resource,
        subject=grantee.subject,
        contact_id=grantee.contact_id,
        generation=integration.oauth_generation,
        family_id=grantee.family_id,
        expires_at=utcnow() + timedelta(seconds=parts.config.code_ttl),
        used_at=None,
    )
    await parts.store.save_code(hash_secret(code), record)


async def consume_code(
    parts: OAuthParts, integration: IntegrationInfo, code: str, client: OAuthClient, resource: str | None
) -> StoredCode:
    record = await parts.store.use_code(hash_secret(code))
    if record is None or record.integration_id != integration.id:
        raise InvalidGrantError("unknown authorization code")
    if record.used_at is not None:
        # A replayed code: whatever was issued from it is compromised (RFC 6749 section 4.1.2).
        await parts.revoke_family(record.family_id)
        raise InvalidGrantError("authorization code already used")
    if record.expires_at < utcnow():
        raise InvalidGrantError("authorization code expired")
    if record.client_id != client.client_id:
        raise InvalidGrantError("authorization code was issued to another client")
    if resource is not None and resource != record.resource:
        raise InvalidTargetError("resource differs from the authorization request")
    if integration.oauth_generation != record.generation:
        raise InvalidGrantError("the integration's OAuth connection changed")
    return StoredCode(record)


async def consume_refresh(
    parts: OAuthParts, integration: IntegrationInfo, token: str, client: OAuthClient, resource: str | None
) -> StoredRefresh:
    record = await parts.store.use_refresh(hash_secret(token))
    if record is None or record.integration_id != integration.id or record.client_id != client.client_id:
        raise InvalidGrantError("unknown refresh token")
    if record.revoked_at is not None:
        raise InvalidGrantError("refresh token revoked")
    if record.used_at is not None:
        # Reuse of a rotated refresh token: someone holds a stolen copy. End the whole family.
        await parts.revoke_family(record.family_id)
        raise InvalidGrantError("refresh token already used; the grant is revoked")
    if record.expires_at < utcnow():
        raise InvalidGrantError("refresh token expired")
    if integration.oauth_generation != record.generation:
        await parts.revoke_family(record.family_id)
        raise InvalidGrantError("the integration's OAuth connection changed")
    if resource is not None and resource != record.resource:
        raise InvalidTargetError("resource differs from the original grant")
    return StoredRefresh(record)


async def token_answer(server: Any, headers: Mapping[str, str], form: dict[str, str]) -> Answer:
    """The token endpoint: Authlib picks the grant, authenticates the client, runs the grant."""
    try:
        basic_id, _ = extract_basic_authorization(headers)
        if basic_id is not None and form.get("client_id") not in (None, basic_id):
            raise InvalidRequestError("client_id differs between header and body")
        request = FormRequest("POST", f"{server.issuer}/token", headers, form)
        answer: Answer = await in_thread(server.create_token_response, request)
    except OAuth2Error as error:  # refused before Authlib's token endpoint could answer
        answer = Answer(*error())
    grant, integration_id = form.get("grant_type"), server.integration.id
    if answer.status == 200 and server.granted is not None:
        principal = f"oauth:{server.granted.subject}"
        server.parts.record("oauth.grant", integration_id, "granted", principal, {"grant": grant})
    elif answer.status >= 400:
        code = str(answer.body.get("error")) if isinstance(answer.body, dict) else "error"
        data = {"endpoint": "token", "grant": grant}
        server.parts.record("auth.failure", integration_id, code, None, data)
    return answer
