"""The authorization endpoint and consent, on Authlib's authorization-code grant.

The MCP client sends the user to ``start``: Authlib validates the request (client, exact redirect URI,
response type, scope, PKCE S256, resource); the user logs in at the owner's IdP (``upstream``), comes
back to ``upstream_callback``, approves the client on the consent page (``decide``, unless consent was
given before), and Authlib issues the code to the client's redirect URI with ``state`` and ``iss``.
The pending request is stored (any auth replica may finish it) and bound to the browser by a cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from skillrelay_auth.oauth.errors import oauth_error
from skillrelay_auth.oauth.framework import Answer, FormRequest, in_thread
from skillrelay_auth.oauth.policy import error_text, with_query
from skillrelay_auth.oauth.server import IntegrationServer, Issuers
from skillrelay_auth.oauth.token import Grantee
from skillrelay_auth.oauth_repo import AuthorizationRequest, utcnow
from skillrelay_auth.upstream import UpstreamError, UpstreamIdP
from skillrelay_common.crypto import SecretBox
from skillrelay_common.ids import hash_secret, new_id
from skillrelay_common.schemas.registry import IntegrationInfo, OAuthConnectionSecret


@dataclass(frozen=True)
class AuthorizationStarted:
    upstream_url: str
    request_id: str
    binding: str  # goes into a cookie: only this browser may finish the login


@dataclass(frozen=True)
class ConsentNeeded:
    request_id: str
    csrf: str
    client_name: str
    client_id: str
    redirect_uri: str
    integration_name: str
    user: str
    scope: str


@dataclass(frozen=True)
class Redirect:
    url: str


def binding_cookie_name(request_id: str) -> str:
    return f"sr_oauth_{request_id}"


class AuthorizationFlow:
    def __init__(self, issuers: Issuers, upstream: UpstreamIdP, secret_key: str) -> None:
        self.parts = issuers.parts
        self._issuers = issuers
        self._upstream = upstream
        self._box = SecretBox(secret_key, "oauth-upstream-verifier")
        self._csrf_key = hashlib.sha256(b"consent-csrf:" + secret_key.encode()).digest()

    # -- the authorization endpoint --------------------------------------------------------------

    async def start(self, integration_id: str, params: dict[str, str]) -> AuthorizationStarted | Redirect:
        """Validated by Authlib; errors it can send to a verified redirect URI come back as ``Redirect``,
        the others are raised (shown on a page: never redirect to an unverified URI)."""
        server = await self._issuers.server(integration_id)
        request = FormRequest("GET", f"{server.issuer}/authorize", {}, params)
        try:
            grant = await in_thread(server.get_consent_grant, request)
        except OAuth2Error as error:
            if error.redirect_uri:
                return self._error_redirect(server.issuer, error.redirect_uri, request.payload.state, error)
            raise
        redirect_uri: str = grant.redirect_uri
        state = request.payload.state
        connection = await self._connection(server.integration)
        try:
            endpoints = await self._upstream.endpoints(connection)
        except UpstreamError as exc:
            unavailable = oauth_error("temporarily_unavailable", str(exc))
            return self._error_redirect(server.issuer, redirect_uri, state, unavailable)
        verifier = secrets.token_urlsafe(48)
        binding = secrets.token_urlsafe(32)
        pending = AuthorizationRequest(
            id=secrets.token_urlsafe(18),
            integration_id=integration_id,
            client_id=request.client.client_id,
            redirect_uri=redirect_uri,
            state=state,
            code_challenge=params["code_challenge"],
            scope=request.scope,
            resource=params.get("resource") or self.parts.config.resource(integration_id),
            force_consent=params.get("prompt") == "consent",
            upstream_state=secrets.token_urlsafe(32),
            upstream_verifier=self._box.encrypt(verifier),
            upstream_nonce=secrets.token_urlsafe(16),
            binding_hash=hash_secret(binding),
            subject=None,
            contact_id=None,
            expires_at=utcnow() + timedelta(seconds=self.parts.config.request_ttl),
        )
        await self.parts.store.save_request(pending)
        url = self._upstream.authorization_redirect(
            endpoints,
            connection,
            redirect_uri=self.parts.config.upstream_redirect_uri,
            state=pending.upstream_state,
            nonce=pending.upstream_nonce,
            code_challenge=create_s256_code_challenge(verifier),
        )
        return AuthorizationStarted(upstream_url=url, request_id=pending.id, binding=binding)

    async def _connection(self, integration: IntegrationInfo) -> OAuthConnectionSecret:
        assert integration.o_auth_connection_id is not None
        connection = await self._issuers.registry.connection(integration.o_auth_connection_id)
        if connection is None:
            raise oauth_error("server_error", "the integration's OAuth connection is gone")
        return connection

    @staticmethod
    def _error_redirect(issuer: str, redirect_uri: str, state: str | None, error: OAuth2Error) -> Redirect:
        answer = {"error": str(error.error), "error_description": error.description or "", "iss": issuer}
        if state is not None:
            answer["state"] = state
        return Redirect(with_query(redirect_uri, answer))

    def _pending_error(self, pending: AuthorizationRequest, error: str, description: str) -> Redirect:
        issuer = self.parts.config.issuer(pending.integration_id)
        return self._error_redirect(
            issuer, pending.redirect_uri, pending.state, oauth_error(error, description)
        )

    # -- back from the IdP -----------------------------------------------------------------------

    async def find_upstream_request(self, upstream_state: str) -> AuthorizationRequest:
        pending = await self.parts.store.request_by_upstream_state(upstream_state) if upstream_state else None
        if pending is None:
            raise oauth_error("invalid_request", "unknown or expired login; start again from your MCP client")
        return pending

    async def upstream_callback(
        self, pending: AuthorizationRequest, params: dict[str, str], binding: str | None
    ) -> ConsentNeeded | Redirect:
        store = self.parts.store
        if not binding or not hmac.compare_digest(hash_secret(binding), pending.binding_hash):
            raise oauth_error("invalid_request", "this login was started in another browser", 403)
        if "error" in params:
            await store.take_request(pending.id)
            return self._pending_error(
                pending, "access_denied", "the identity provider did not log the user in"
            )
        code = params.get("code")
        if not code:
            raise oauth_error("invalid_request", "the identity provider sent no code")
        server = await self._issuers.server(pending.integration_id)
        connection = await self._connection(server.integration)
        try:
            endpoints = await self._upstream.endpoints(connection)
            user = await self._upstream.finish(
                endpoints,
                connection,
                code=code,
                redirect_uri=self.parts.config.upstream_redirect_uri,
                code_verifier=self._box.decrypt(pending.upstream_verifier),
                nonce=pending.upstream_nonce,
            )
        except UpstreamError as exc:
            await store.take_request(pending.id)
            return self._pending_error(pending, "access_denied", error_text(str(exc)))
        owner = server.integration.owner_id
        contact_id = await store.upsert_contact(
            new_id("contact"), owner, connection.id, user.subject, user.email, user.name
        )
        await store.set_request_user(pending.id, user.subject, contact_id)
        if not pending.force_consent and await store.has_consent(
            pending.integration_id, contact_id, pending.client_id, pending.scope
        ):
            return await self._finish(server, pending, (user.subject, contact_id))
        client = await self.parts.clients.find(pending.integration_id, pending.client_id)
        return ConsentNeeded(
            request_id=pending.id,
            csrf=self._csrf(pending.id, binding),
            client_name=(client.client_name if client and client.client_name else pending.client_id),
            client_id=pending.client_id,
            redirect_uri=pending.redirect_uri,
            integration_name=server.integration.name,
            user=user.email or user.name or user.subject,
            scope=pending.scope,
        )

    def _csrf(self, request_id: str, binding: str) -> str:
        return hmac.new(self._csrf_key, f"{request_id}:{binding}".encode(), hashlib.sha256).hexdigest()

    # -- the consent form ------------------------------------------------------------------------

    async def decide(self, request_id: str, csrf: str, binding: str | None, allow: bool) -> Redirect:
        store = self.parts.store
        pending = await store.request_by_id(request_id) if request_id else None
        if pending is None or pending.subject is None or pending.contact_id is None:
            raise oauth_error("invalid_request", "unknown or expired consent request")
        if not binding or not hmac.compare_digest(hash_secret(binding), pending.binding_hash):
            raise oauth_error("invalid_request", "this consent belongs to another browser", 403)
        if not hmac.compare_digest(self._csrf(request_id, binding), csrf or ""):
            raise oauth_error("invalid_request", "the consent form is stale or forged", 403)
        server = await self._issuers.server(pending.integration_id)
        if not allow:
            return await self._finish(server, pending, None)
        await store.grant_consent(
            pending.integration_id, pending.contact_id, pending.client_id, pending.scope
        )
        return await self._finish(server, pending, (pending.subject, pending.contact_id))

    async def _finish(
        self, server: IntegrationServer, pending: AuthorizationRequest, user: tuple[str, str] | None
    ) -> Redirect:
        """Authlib answers the stored request: a code for ``user`` (subject, contact), a new grant
        family; or access_denied for None."""
        if not await self.parts.store.take_request(pending.id):
            raise oauth_error("invalid_request", "this authorization was already completed")
        grantee = None
        if user is not None:
            grantee = Grantee(user[0], user[1], secrets.token_urlsafe(18), pending.resource)
        request = FormRequest("GET", f"{server.issuer}/authorize", {}, stored_parameters(pending))
        answer = await in_thread(_authorization_response, server, request, grantee)
        if answer.location is None:
            raise oauth_error(str(answer.body.get("error")), str(answer.body.get("error_description", "")))
        return Redirect(answer.location)


def stored_parameters(pending: AuthorizationRequest) -> dict[str, str]:
    """The authorization request as the client sent it, validated again when it is answered."""
    params = {
        "response_type": "code",
        "client_id": pending.client_id,
        "redirect_uri": pending.redirect_uri,
        "scope": pending.scope,
        "code_challenge": pending.code_challenge,
        "code_challenge_method": "S256",
        "resource": pending.resource,
    }
    if pending.state is not None:
        params["state"] = pending.state
    return params


def _authorization_response(server: IntegrationServer, request: FormRequest, grantee: Grantee | None) -> Any:
    try:
        grant = server.get_consent_grant(request, end_user=grantee)
    except OAuth2Error as error:
        refused: Answer = server.handle_error_response(request, error)
        if refused.location is not None:
            refused.location = with_query(refused.location, {"iss": server.issuer})
        return refused
    answer: Answer = server.create_authorization_response(request, grant_user=grantee, grant=grant)
    return answer
