"""The OAuth 2.1 authorization server's use cases, one issuer per integration. No framework imports.

Flow: the MCP client sends the user to ``authorize``; the user logs in at the owner's IdP (``upstream``),
comes back to ``upstream_callback``, approves the client on the consent page (``decide``), and the client
exchanges the code at ``token``. Access tokens are short-lived ES256 JWTs the edge verifies locally;
refresh tokens rotate on every use, and presenting a used one revokes its whole family.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from skillrelay_auth.oauth_repo import (
    AuthorizationRequest,
    ClientRecord,
    CodeRecord,
    OAuthStore,
    RevokedAccess,
    utcnow,
)
from skillrelay_auth.signing import SigningKeys
from skillrelay_auth.static_tokens import AuditSink
from skillrelay_auth.upstream import UpstreamError, UpstreamIdP
from skillrelay_common.crypto import SecretBox
from skillrelay_common.ids import hash_secret, new_id, new_secret
from skillrelay_common.schemas.registry import IntegrationInfo, OAuthConnectionSecret

SUPPORTED_SCOPES = ("mcp",)
DEFAULT_SCOPE = "mcp"
AUTH_METHODS = ("none", "client_secret_post", "client_secret_basic")
GRANT_TYPES = ("authorization_code", "refresh_token")
MAX_PARAMETER_LENGTH = 4096
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


@dataclass(frozen=True)
class OAuthConfig:
    auth_public_url: str
    edge_public_url: str
    access_token_ttl: int = 300
    refresh_token_ttl: int = 30 * 24 * 3600
    code_ttl: int = 60
    request_ttl: int = 600
    metadata_document_refresh: int = 3600
    # Dynamic client registrations per minute per client address (and per auth replica).
    registrations_per_minute: int = 20
    # A registered client to which no authorization code was issued within this time is deleted.
    unused_client_ttl: int = 7 * 24 * 3600


class OAuthError(Exception):
    """An OAuth error answer (RFC 6749 section 5.2 shape); ``description`` is safe to show."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class RedirectWithError(Exception):
    """An authorization error returned to the client's (verified) redirect URI."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class RegistryLookup(Protocol):
    async def integration(self, integration_id: str) -> IntegrationInfo | None:
        """None when unknown; raises ``OAuthError`` (503) when the registry cannot be asked."""

    async def connection(self, connection_id: str) -> OAuthConnectionSecret | None: ...


class AccessRevoker(Protocol):
    async def revoke_access(self, revoked: list[RevokedAccess]) -> None:
        """Tell every edge replica to refuse these access tokens (by jti) until they expire."""


class ClientDocuments(Protocol):
    async def fetch(self, url: str) -> dict[str, Any]:
        """A client ID metadata document; raises ``ValueError`` when it cannot be used."""


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
class IssuedTokens:
    body: dict[str, Any]  # the token endpoint's JSON answer
    subject: str


@dataclass(frozen=True)
class Redirect:
    url: str


def binding_cookie_name(request_id: str) -> str:
    return f"sr_oauth_{request_id}"


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _is_pkce_value(value: str) -> bool:
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    return 43 <= len(value) <= 128 and set(value) <= allowed


def valid_redirect_uri(uri: str) -> bool:
    """https anywhere, http only to loopback (native apps), or a private-use scheme; never a fragment."""
    if len(uri) > 2000:
        return False
    parts = urlsplit(uri)
    if parts.fragment or not parts.scheme:
        return False
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme == "http":
        return (parts.hostname or "") in _LOOPBACK_HOSTS
    # Private-use URI schemes of native apps (RFC 8252 section 7.1), e.g. com.example.app:/callback.
    return parts.scheme not in {"javascript", "data", "file", "vbscript", "about", "blob"}


def valid_metadata_document_url(client_id: str) -> bool:
    parts = urlsplit(client_id)
    return (
        parts.scheme == "https"
        and bool(parts.hostname)
        and parts.path not in ("", "/")
        and not parts.fragment
        and not parts.username
        and not parts.password
        and "/./" not in parts.path + "/"
        and "/../" not in parts.path + "/"
        and len(client_id) <= 2000
    )


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class AuthorizationServer:
    def __init__(
        self,
        config: OAuthConfig,
        store: OAuthStore,
        keys: SigningKeys,
        registry: RegistryLookup,
        upstream: UpstreamIdP,
        documents: ClientDocuments,
        revoker: AccessRevoker,
        secret_key: str,
        audit: AuditSink | None = None,
    ) -> None:
        self._audit = audit
        self.config = config
        self._store = store
        self._keys = keys
        self._registry = registry
        self._upstream = upstream
        self._documents = documents
        self._revoker = revoker
        self._box = SecretBox(secret_key, "oauth-upstream-verifier")
        self._csrf_key = hashlib.sha256(b"consent-csrf:" + secret_key.encode()).digest()

    # -- names -----------------------------------------------------------------------------------

    def issuer(self, integration_id: str) -> str:
        return f"{self.config.auth_public_url}/oauth/{integration_id}"

    def resource(self, integration_id: str) -> str:
        return f"{self.config.edge_public_url}/api/v1/integration/mcpserver/{integration_id}/mcp"

    @property
    def upstream_redirect_uri(self) -> str:
        """The single callback URL the owner registers at the IdP for the OAuth connection."""
        return f"{self.config.auth_public_url}/oauth/callback"

    def metadata(self, integration_id: str) -> dict[str, Any]:
        issuer = self.issuer(integration_id)
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "registration_endpoint": f"{issuer}/register",
            "revocation_endpoint": f"{issuer}/revoke",
            "jwks_uri": f"{issuer}/jwks",
            "scopes_supported": list(SUPPORTED_SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(GRANT_TYPES),
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "client_id_metadata_document_supported": True,
            "resource_indicators_supported": True,
        }

    async def oauth_integration(self, integration_id: str) -> IntegrationInfo:
        integration = await self._registry.integration(integration_id)
        if integration is None or not integration.o_auth_connection_id:
            raise OAuthError("not_found", "no OAuth authorization server for this integration", 404)
        return integration

    # -- registration (RFC 7591) -----------------------------------------------------------------

    async def register_client(self, integration_id: str, body: Any) -> dict[str, Any]:
        await self.oauth_integration(integration_id)
        if not isinstance(body, dict):
            raise OAuthError("invalid_client_metadata", "the body must be a JSON object")
        if not storable(body):
            raise OAuthError(
                "invalid_client_metadata", "client metadata may not contain NUL characters or invalid text"
            )
        uris = body.get("redirect_uris")
        if (
            not isinstance(uris, list)
            or not uris
            or len(uris) > 10
            or not all(isinstance(u, str) for u in uris)
        ):
            raise OAuthError("invalid_redirect_uri", "redirect_uris must list 1 to 10 URIs")
        if not all(valid_redirect_uri(u) for u in uris):
            raise OAuthError(
                "invalid_redirect_uri",
                "redirect URIs must be https, http on loopback, or a private-use scheme",
            )
        method = body.get("token_endpoint_auth_method", "client_secret_basic")
        if method not in AUTH_METHODS:
            raise OAuthError(
                "invalid_client_metadata", f"token_endpoint_auth_method must be one of {AUTH_METHODS}"
            )
        grants = body.get("grant_types", ["authorization_code"])
        if (
            not isinstance(grants, list)
            or not set(grants) <= set(GRANT_TYPES)
            or "authorization_code" not in grants
        ):
            raise OAuthError(
                "invalid_client_metadata", "grant_types may hold authorization_code and refresh_token"
            )
        responses = body.get("response_types", ["code"])
        if responses != ["code"]:
            raise OAuthError("invalid_client_metadata", 'response_types must be ["code"]')
        name = body.get("client_name")
        if name is not None and (not isinstance(name, str) or len(name) > 200):
            raise OAuthError(
                "invalid_client_metadata", "client_name must be a string of at most 200 characters"
            )
        scope = body.get("scope")
        if scope is not None and (
            not isinstance(scope, str) or not set(scope.split()) <= set(SUPPORTED_SCOPES)
        ):
            raise OAuthError("invalid_client_metadata", f"scope may hold {' '.join(SUPPORTED_SCOPES)}")
        client_id = new_id("client")
        secret = None if method == "none" else new_secret("sr_cs", 32)
        kept = {
            k: body[k]
            for k in ("client_uri", "logo_uri", "software_id", "software_version")
            if isinstance(body.get(k), str) and len(body[k]) <= 2000
        }
        now = utcnow()
        await self._store.save_client(
            ClientRecord(
                client_id=client_id,
                integration_id=integration_id,
                kind="registered",
                client_secret_hash=hash_secret(secret) if secret else None,
                token_endpoint_auth_method=method,
                redirect_uris=list(uris),
                grant_types=list(grants),
                client_name=name,
                metadata=kept,
                refreshed_at=now,
            )
        )
        # Registration is where abandoned registrations pile up, so it is also where they go (indexed).
        await self._store.forget_unused_clients(now - timedelta(seconds=self.config.unused_client_ttl))
        answer: dict[str, Any] = {
            "client_id": client_id,
            "client_id_issued_at": int(now.timestamp()),
            "redirect_uris": list(uris),
            "token_endpoint_auth_method": method,
            "grant_types": list(grants),
            "response_types": ["code"],
            **kept,
        }
        if name is not None:
            answer["client_name"] = name
        if scope is not None:
            answer["scope"] = scope
        if secret is not None:
            answer["client_secret"] = secret
            answer["client_secret_expires_at"] = 0
        return answer

    async def _client(self, integration_id: str, client_id: str) -> ClientRecord | None:
        """A registered client of this issuer, or a client ID metadata document (fetched, cached)."""
        if valid_metadata_document_url(client_id):
            return await self._metadata_document_client(client_id)
        record = await self._store.client(client_id)
        if record is None or record.kind != "registered" or record.integration_id != integration_id:
            return None
        return record

    async def _metadata_document_client(self, url: str) -> ClientRecord | None:
        cached = await self._store.client(url)
        fresh_enough = cached is not None and (
            utcnow() - cached.refreshed_at < timedelta(seconds=self.config.metadata_document_refresh)
        )
        if cached is not None and fresh_enough:
            return cached
        try:
            document = await self._documents.fetch(url)
            record = self._metadata_document_record(url, document)
        except ValueError:
            return (
                cached if cached is not None and utcnow() - cached.refreshed_at < timedelta(days=1) else None
            )
        await self._store.save_client(record)
        return record

    @staticmethod
    def _metadata_document_record(url: str, document: dict[str, Any]) -> ClientRecord:
        if document.get("client_id") != url:
            raise ValueError("the document's client_id is not its own URL")
        uris = document.get("redirect_uris")
        if (
            not isinstance(uris, list)
            or not uris
            or not all(isinstance(u, str) and valid_redirect_uri(u) for u in uris)
        ):
            raise ValueError("the document has no usable redirect_uris")
        method = document.get("token_endpoint_auth_method", "none")
        if method != "none":
            raise ValueError("metadata-document clients must use token_endpoint_auth_method none")
        if "client_secret" in document:
            raise ValueError("a metadata document must not carry a secret")
        grants = document.get("grant_types", ["authorization_code"])
        if not isinstance(grants, list):
            raise ValueError("grant_types must be a list")
        if not storable(document):
            raise ValueError("the document contains NUL characters or invalid text")
        name = document.get("client_name")
        return ClientRecord(
            client_id=url,
            integration_id=None,
            kind="metadata_document",
            client_secret_hash=None,
            token_endpoint_auth_method="none",
            redirect_uris=list(uris),
            grant_types=[g for g in grants if g in GRANT_TYPES] or ["authorization_code"],
            client_name=name[:200] if isinstance(name, str) else None,
            metadata={k: document[k] for k in ("client_uri", "logo_uri") if isinstance(document.get(k), str)},
            refreshed_at=utcnow(),
        )

    # -- authorization endpoint ------------------------------------------------------------------

    async def authorize(self, integration_id: str, params: dict[str, str]) -> AuthorizationStarted:
        if any(len(value) > MAX_PARAMETER_LENGTH for value in params.values()):
            raise OAuthError("invalid_request", "a parameter is too long")
        integration = await self.oauth_integration(integration_id)
        client_id = params.get("client_id", "")
        client = await self._client(integration_id, client_id) if client_id else None
        if client is None:
            raise OAuthError("invalid_client", "unknown client_id for this authorization server")
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None and len(client.redirect_uris) == 1:
            redirect_uri = client.redirect_uris[0]
        if redirect_uri is None or redirect_uri not in client.redirect_uris:
            # Never redirect to an unregistered URI: show the error instead (exact string match).
            raise OAuthError("invalid_request", "redirect_uri does not exactly match a registered one")
        state = params.get("state")
        issuer = self.issuer(integration_id)

        def fail(error: str, description: str) -> RedirectWithError:
            answer = {"error": error, "error_description": description, "iss": issuer}
            if state is not None:
                answer["state"] = state
            return RedirectWithError(_with_query(redirect_uri, answer))

        if params.get("response_type") != "code":
            raise fail("unsupported_response_type", "only response_type=code is supported")
        challenge = params.get("code_challenge")
        if not challenge:
            raise fail("invalid_request", "PKCE is required: send code_challenge with method S256")
        if params.get("code_challenge_method") != "S256":
            raise fail("invalid_request", "code_challenge_method must be S256")
        if not _is_pkce_value(challenge):
            raise fail("invalid_request", "code_challenge is malformed")
        scope = params.get("scope") or DEFAULT_SCOPE
        if not set(scope.split()) <= set(SUPPORTED_SCOPES):
            raise fail("invalid_scope", f"supported scopes: {' '.join(SUPPORTED_SCOPES)}")
        resource = params.get("resource") or self.resource(integration_id)
        if resource != self.resource(integration_id):
            raise fail("invalid_target", "resource must be this integration's MCP endpoint")
        if params.get("prompt") == "none":
            raise fail("login_required", "the user must log in at the identity provider")
        if client.grant_types and "authorization_code" not in client.grant_types:
            raise fail("unauthorized_client", "the client may not use the authorization code grant")

        connection = await self._connection(integration)
        try:
            endpoints = await self._upstream.endpoints(connection)
        except UpstreamError as exc:
            raise fail("temporarily_unavailable", str(exc)) from None
        verifier = secrets.token_urlsafe(48)
        binding = secrets.token_urlsafe(32)
        request = AuthorizationRequest(
            id=secrets.token_urlsafe(18),
            integration_id=integration_id,
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            state=state,
            code_challenge=challenge,
            scope=" ".join(sorted(set(scope.split()))),
            resource=resource,
            force_consent=params.get("prompt") == "consent",
            upstream_state=secrets.token_urlsafe(32),
            upstream_verifier=self._box.encrypt(verifier),
            upstream_nonce=secrets.token_urlsafe(16),
            binding_hash=hash_secret(binding),
            subject=None,
            contact_id=None,
            expires_at=utcnow() + timedelta(seconds=self.config.request_ttl),
        )
        await self._store.save_request(request)
        url = self._upstream.authorization_redirect(
            endpoints,
            connection,
            redirect_uri=self.upstream_redirect_uri,
            state=request.upstream_state,
            nonce=request.upstream_nonce,
            code_challenge=s256(verifier),
        )
        return AuthorizationStarted(upstream_url=url, request_id=request.id, binding=binding)

    async def _connection(self, integration: IntegrationInfo) -> OAuthConnectionSecret:
        assert integration.o_auth_connection_id is not None
        connection = await self._registry.connection(integration.o_auth_connection_id)
        if connection is None:
            raise OAuthError("server_error", "the integration's OAuth connection is gone", 400)
        return connection

    def _error_redirect(self, request: AuthorizationRequest, error: str, description: str) -> Redirect:
        answer = {
            "error": error,
            "error_description": description,
            "iss": self.issuer(request.integration_id),
        }
        if request.state is not None:
            answer["state"] = request.state
        return Redirect(_with_query(request.redirect_uri, answer))

    # -- back from the IdP -----------------------------------------------------------------------

    async def find_upstream_request(self, upstream_state: str) -> AuthorizationRequest:
        request = await self._store.request_by_upstream_state(upstream_state) if upstream_state else None
        if request is None:
            raise OAuthError("invalid_request", "unknown or expired login; start again from your MCP client")
        return request

    async def upstream_callback(
        self, request: AuthorizationRequest, params: dict[str, str], binding: str | None
    ) -> ConsentNeeded | Redirect:
        if not binding or not hmac.compare_digest(hash_secret(binding), request.binding_hash):
            raise OAuthError("invalid_request", "this login was started in another browser", 403)
        if "error" in params:
            await self._store.take_request(request.id)
            return self._error_redirect(
                request, "access_denied", "the identity provider did not log the user in"
            )
        code = params.get("code")
        if not code:
            raise OAuthError("invalid_request", "the identity provider sent no code")
        integration = await self.oauth_integration(request.integration_id)
        connection = await self._connection(integration)
        try:
            endpoints = await self._upstream.endpoints(connection)
            user = await self._upstream.finish(
                endpoints,
                connection,
                code=code,
                redirect_uri=self.upstream_redirect_uri,
                code_verifier=self._box.decrypt(request.upstream_verifier),
                nonce=request.upstream_nonce,
            )
        except UpstreamError as exc:
            await self._store.take_request(request.id)
            return self._error_redirect(request, "access_denied", str(exc))
        contact_id = await self._store.upsert_contact(
            new_id("contact"), integration.owner_id, connection.id, user.subject, user.email, user.name
        )
        await self._store.set_request_user(request.id, user.subject, contact_id)
        if not request.force_consent and await self._store.has_consent(
            request.integration_id, contact_id, request.client_id, request.scope
        ):
            return await self._issue_code(request, user.subject, contact_id, integration)
        client = await self._client(request.integration_id, request.client_id)
        return ConsentNeeded(
            request_id=request.id,
            csrf=self._csrf(request.id, binding),
            client_name=(client.client_name if client and client.client_name else request.client_id),
            client_id=request.client_id,
            redirect_uri=request.redirect_uri,
            integration_name=integration.name,
            user=user.email or user.name or user.subject,
            scope=request.scope,
        )

    def _csrf(self, request_id: str, binding: str) -> str:
        return hmac.new(self._csrf_key, f"{request_id}:{binding}".encode(), hashlib.sha256).hexdigest()

    async def decide(self, request_id: str, csrf: str, binding: str | None, allow: bool) -> Redirect:
        request = await self._store.request_by_id(request_id) if request_id else None
        if request is None or request.subject is None or request.contact_id is None:
            raise OAuthError("invalid_request", "unknown or expired consent request")
        if not binding or not hmac.compare_digest(hash_secret(binding), request.binding_hash):
            raise OAuthError("invalid_request", "this consent belongs to another browser", 403)
        if not hmac.compare_digest(self._csrf(request_id, binding), csrf or ""):
            raise OAuthError("invalid_request", "the consent form is stale or forged", 403)
        if not allow:
            await self._store.take_request(request.id)
            return self._error_redirect(request, "access_denied", "the user declined")
        integration = await self.oauth_integration(request.integration_id)
        await self._store.grant_consent(
            request.integration_id, request.contact_id, request.client_id, request.scope
        )
        return await self._issue_code(request, request.subject, request.contact_id, integration)

    async def _issue_code(
        self, request: AuthorizationRequest, subject: str, contact_id: str, integration: IntegrationInfo
    ) -> Redirect:
        if not await self._store.take_request(request.id):
            raise OAuthError("invalid_request", "this authorization was already completed")
        code = secrets.token_urlsafe(32)
        await self._store.save_code(
            hash_secret(code),
            CodeRecord(
                integration_id=request.integration_id,
                client_id=request.client_id,
                redirect_uri=request.redirect_uri,
                code_challenge=request.code_challenge,
                scope=request.scope,
                resource=request.resource,
                subject=subject,
                contact_id=contact_id,
                generation=integration.oauth_generation,
                family_id=secrets.token_urlsafe(18),
                expires_at=utcnow() + timedelta(seconds=self.config.code_ttl),
                used_at=None,
            ),
        )
        answer = {"code": code, "iss": self.issuer(request.integration_id)}
        if request.state is not None:
            answer["state"] = request.state
        return Redirect(_with_query(request.redirect_uri, answer))

    # -- token endpoint --------------------------------------------------------------------------

    async def _authenticate_client(
        self, integration_id: str, form: dict[str, str], basic: tuple[str, str] | None
    ) -> ClientRecord:
        client_id = basic[0] if basic else form.get("client_id", "")
        if basic and form.get("client_id") not in (None, basic[0]):
            raise OAuthError("invalid_request", "client_id differs between header and body")
        client = await self._client(integration_id, client_id) if client_id else None
        if client is None:
            raise OAuthError("invalid_client", "unknown client", 401)
        presented = basic[1] if basic else form.get("client_secret")
        method = client.token_endpoint_auth_method
        if method == "none":
            if presented:
                raise OAuthError("invalid_client", "this client has no secret", 401)
            return client
        if (method == "client_secret_basic" and basic is None) or (
            method == "client_secret_post" and basic is not None
        ):
            raise OAuthError("invalid_client", f"authenticate with {method}", 401)
        expected = client.client_secret_hash or ""
        if not presented or not hmac.compare_digest(hash_secret(presented), expected):
            raise OAuthError("invalid_client", "client authentication failed", 401)
        return client

    async def token(
        self, integration_id: str, form: dict[str, str], basic: tuple[str, str] | None
    ) -> dict[str, Any]:
        integration = await self.oauth_integration(integration_id)
        grant = form.get("grant_type")
        try:
            client = await self._authenticate_client(integration_id, form, basic)
            if grant == "authorization_code":
                answer = await self._exchange_code(integration, client, form)
            elif grant == "refresh_token":
                if "refresh_token" not in client.grant_types:
                    raise OAuthError(
                        "unauthorized_client", "the client did not register the refresh_token grant"
                    )
                answer = await self._refresh(integration, client, form)
            else:
                raise OAuthError(
                    "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"
                )
        except OAuthError as exc:
            self._record(
                "auth.failure", integration_id, exc.error, None, {"endpoint": "token", "grant": grant}
            )
            raise
        self._record("oauth.grant", integration_id, "granted", f"oauth:{answer.subject}", {"grant": grant})
        return answer.body

    async def _exchange_code(
        self, integration: IntegrationInfo, client: ClientRecord, form: dict[str, str]
    ) -> IssuedTokens:
        code = form.get("code")
        if not code:
            raise OAuthError("invalid_request", "code is missing")
        record = await self._store.use_code(hash_secret(code))
        if record is None or record.integration_id != integration.id:
            raise OAuthError("invalid_grant", "unknown authorization code")
        if record.used_at is not None:
            # A replayed code: whatever was issued from it is compromised (RFC 6749 section 4.1.2).
            await self._revoke_family(record.family_id)
            raise OAuthError("invalid_grant", "authorization code already used")
        if record.expires_at < utcnow():
            raise OAuthError("invalid_grant", "authorization code expired")
        if record.client_id != client.client_id:
            raise OAuthError("invalid_grant", "authorization code was issued to another client")
        if form.get("redirect_uri") != record.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        verifier = form.get("code_verifier")
        if not verifier:
            raise OAuthError("invalid_request", "code_verifier is missing (PKCE is required)")
        if not _is_pkce_value(verifier) or not hmac.compare_digest(s256(verifier), record.code_challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        resource = form.get("resource")
        if resource is not None and resource != record.resource:
            raise OAuthError("invalid_target", "resource differs from the authorization request")
        if integration.oauth_generation != record.generation:
            raise OAuthError("invalid_grant", "the integration's OAuth connection changed")
        return await self._issue_tokens(
            integration,
            client,
            family_id=record.family_id,
            subject=record.subject,
            contact_id=record.contact_id,
            scope=record.scope,
            resource=record.resource,
        )

    async def _refresh(
        self, integration: IntegrationInfo, client: ClientRecord, form: dict[str, str]
    ) -> IssuedTokens:
        token = form.get("refresh_token")
        if not token:
            raise OAuthError("invalid_request", "refresh_token is missing")
        record = await self._store.use_refresh(hash_secret(token))
        if record is None or record.integration_id != integration.id or record.client_id != client.client_id:
            raise OAuthError("invalid_grant", "unknown refresh token")
        if record.revoked_at is not None:
            raise OAuthError("invalid_grant", "refresh token revoked")
        if record.used_at is not None:
            # Reuse of a rotated refresh token: someone holds a stolen copy. End the whole family.
            await self._revoke_family(record.family_id)
            raise OAuthError("invalid_grant", "refresh token already used; the grant is revoked")
        if record.expires_at < utcnow():
            raise OAuthError("invalid_grant", "refresh token expired")
        if integration.oauth_generation != record.generation:
            await self._revoke_family(record.family_id)
            raise OAuthError("invalid_grant", "the integration's OAuth connection changed")
        scope = form.get("scope") or record.scope
        if not set(scope.split()) <= set(record.scope.split()):
            raise OAuthError("invalid_scope", "a refresh cannot widen the scope")
        resource = form.get("resource")
        if resource is not None and resource != record.resource:
            raise OAuthError("invalid_target", "resource differs from the original grant")
        return await self._issue_tokens(
            integration,
            client,
            family_id=record.family_id,
            subject=record.subject,
            contact_id=record.contact_id,
            scope=scope,
            resource=record.resource,
        )

    async def _issue_tokens(
        self,
        integration: IntegrationInfo,
        client: ClientRecord,
        *,
        family_id: str,
        subject: str,
        contact_id: str,
        scope: str,
        resource: str,
    ) -> IssuedTokens:
        now = int(time.time())
        ttl = self.config.access_token_ttl
        jti = secrets.token_urlsafe(16)
        access = await self._keys.sign(
            {
                "iss": self.issuer(integration.id),
                "aud": resource,
                "sub": subject,
                "iat": now,
                "exp": now + ttl,
                "jti": jti,
                "client_id": client.client_id,
                "scope": scope,
                "gen": integration.oauth_generation,
                "cid": contact_id,
            }
        )
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": scope,
        }
        refresh = new_secret("sr_rt", 32)
        await self._store.save_refresh(
            hash_secret(refresh),
            family_id=family_id,
            integration_id=integration.id,
            client_id=client.client_id,
            subject=subject,
            contact_id=contact_id,
            scope=scope,
            resource=resource,
            generation=integration.oauth_generation,
            access_jti=jti,
            access_expires_at=datetime.fromtimestamp(now + ttl, utcnow().tzinfo),
            expires_at=utcnow() + timedelta(seconds=self.config.refresh_token_ttl),
        )
        if "refresh_token" in client.grant_types:
            answer["refresh_token"] = refresh
        return IssuedTokens(body=answer, subject=subject)

    def _record(
        self, kind: str, integration_id: str, outcome: str, principal: str | None, data: dict[str, Any]
    ) -> None:
        if self._audit is not None:
            self._audit.record(kind, integration_id, outcome=outcome, principal=principal, data=data)

    async def _revoke_family(self, family_id: str) -> None:
        revoked = await self._store.revoke_family(family_id)
        if revoked:
            self._record("oauth.grant", revoked[0].integration_id, "revoked", None, {"tokens": len(revoked)})
            await self._revoker.revoke_access(revoked)

    # -- revocation (RFC 7009) -------------------------------------------------------------------

    async def revoke(self, integration_id: str, form: dict[str, str], basic: tuple[str, str] | None) -> None:
        await self.oauth_integration(integration_id)
        client = await self._authenticate_client(integration_id, form, basic)
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is missing")
        hint = form.get("token_type_hint")
        if hint not in (None, "refresh_token", "access_token"):
            raise OAuthError(
                "unsupported_token_type", "token_type_hint must be refresh_token or access_token"
            )
        record = await self._store.refresh_by_hash(hash_secret(token))
        if record is not None:
            if record.client_id == client.client_id and record.integration_id == integration_id:
                await self._revoke_family(record.family_id)
            return
        claims = await self._keys.decode(token)
        if (
            claims is not None
            and claims.get("client_id") == client.client_id
            and claims.get("iss") == self.issuer(integration_id)
            and isinstance(claims.get("jti"), str)
            and isinstance(claims.get("exp"), int)
        ):
            expires = datetime.fromtimestamp(claims["exp"], utcnow().tzinfo)
            await self._revoker.revoke_access([RevokedAccess(integration_id, claims["jti"], expires)])
        # Unknown tokens are not an error (RFC 7009 section 2.2).

    async def forget_integration(self, integration_id: str) -> None:
        """The integration is deleted: its refresh tokens, codes and registered clients go too."""
        await self._store.revoke_integration(integration_id)

    async def jwks(self) -> list[dict[str, Any]]:
        return await self._keys.jwks()


def storable(value: Any) -> bool:
    """Every string in ``value`` (a decoded JSON document) can be stored in PostgreSQL text and
    JSON: no NUL character (which PostgreSQL refuses) and no lone surrogate (which is not UTF-8).
    Walked without recursion: the document may be nested as deep as the JSON decoder allows."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item or not (item.isascii() or _encodes_as_utf8(item)):
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _encodes_as_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
