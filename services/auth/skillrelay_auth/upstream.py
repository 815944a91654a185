"""Login at the owner's identity provider through the integration's OAuth connection: OIDC discovery (or
explicit endpoints), authorization code with its own state, nonce and PKCE, then the user's identity
from the verified ID token or the userinfo endpoint."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt

from skillrelay_auth.safe_http import FetchFailed, SafeHttp
from skillrelay_common.schemas.registry import OAuthConnectionSecret

_DISCOVERY_CACHE_SECONDS = 300.0


class UpstreamError(Exception):
    """The IdP could not be used or refused the login; the message is safe to show."""


@dataclass(frozen=True)
class UpstreamEndpoints:
    issuer: str | None
    authorization_url: str
    token_url: str
    userinfo_url: str | None
    jwks_uri: str | None
    token_auth_methods: tuple[str, ...]


@dataclass(frozen=True)
class UpstreamUser:
    subject: str
    email: str | None
    name: str | None


class UpstreamIdP:
    def __init__(self, http: SafeHttp) -> None:
        self._http = http
        self._discovered: dict[str, tuple[float, dict[str, Any]]] = {}

    async def endpoints(self, connection: OAuthConnectionSecret) -> UpstreamEndpoints:
        discovered: dict[str, Any] = {}
        if connection.issuer:
            discovered = await self._discover(connection.issuer)
        authorization_url = connection.authorization_url or discovered.get("authorization_endpoint")
        token_url = connection.token_url or discovered.get("token_endpoint")
        if not isinstance(authorization_url, str) or not isinstance(token_url, str):
            raise UpstreamError("the OAuth connection has no authorization or token endpoint")
        methods = discovered.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        return UpstreamEndpoints(
            issuer=discovered.get("issuer") if isinstance(discovered.get("issuer"), str) else None,
            authorization_url=authorization_url,
            token_url=token_url,
            userinfo_url=connection.userinfo_url or discovered.get("userinfo_endpoint"),
            jwks_uri=discovered.get("jwks_uri"),
            token_auth_methods=tuple(str(m) for m in methods),
        )

    async def _discover(self, issuer: str) -> dict[str, Any]:
        cached = self._discovered.get(issuer)
        if cached and time.monotonic() - cached[0] < _DISCOVERY_CACHE_SECONDS:
            return cached[1]
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            document = await self._http.get_json(url)
        except (FetchFailed, ValueError) as exc:
            raise UpstreamError(f"OIDC discovery at the identity provider failed: {exc}") from None
        if not isinstance(document, dict):
            raise UpstreamError("OIDC discovery document is not an object")
        self._discovered[issuer] = (time.monotonic(), document)
        return document

    def authorization_redirect(
        self,
        endpoints: UpstreamEndpoints,
        connection: OAuthConnectionSecret,
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_challenge: str,
    ) -> str:
        scopes = list(connection.scopes) or ["openid"]
        if connection.issuer and "openid" not in scopes:
            scopes.insert(0, "openid")
        query = {
            "response_type": "code",
            "client_id": connection.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        separator = "&" if "?" in endpoints.authorization_url else "?"
        return f"{endpoints.authorization_url}{separator}{urlencode(query)}"

    async def finish(
        self,
        endpoints: UpstreamEndpoints,
        connection: OAuthConnectionSecret,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        nonce: str,
    ) -> UpstreamUser:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers: dict[str, str] = {}
        if "client_secret_basic" in endpoints.token_auth_methods:
            pair = f"{_form_escape(connection.client_id)}:{_form_escape(connection.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form.update(client_id=connection.client_id, client_secret=connection.client_secret)
        try:
            tokens = await self._http.post_form(endpoints.token_url, form, headers=headers)
        except (FetchFailed, ValueError) as exc:
            raise UpstreamError(f"the identity provider refused the login: {exc}") from None
        if not isinstance(tokens, dict):
            raise UpstreamError("the identity provider sent an unreadable token answer")
        claims: dict[str, Any] = {}
        id_token = tokens.get("id_token")
        if isinstance(id_token, str) and endpoints.jwks_uri:
            claims = await self._verify_id_token(endpoints, connection, id_token, nonce)
        access_token = tokens.get("access_token")
        if endpoints.userinfo_url and isinstance(access_token, str):
            try:
                info = await self._http.get_json(
                    endpoints.userinfo_url, headers={"Authorization": f"Bearer {access_token}"}
                )
            except (FetchFailed, ValueError) as exc:
                if not claims:
                    raise UpstreamError(f"userinfo request failed: {exc}") from None
                info = {}
            if isinstance(info, dict):
                if claims and info.get("sub") not in (None, claims.get("sub")):
                    raise UpstreamError("userinfo subject differs from the ID token")
                claims = {**info, **claims}
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise UpstreamError("the identity provider did not say who logged in")
        email = claims.get("email")
        name = claims.get("name") or claims.get("preferred_username")
        return UpstreamUser(
            subject=subject,
            email=email if isinstance(email, str) else None,
            name=name if isinstance(name, str) else None,
        )

    async def _verify_id_token(
        self, endpoints: UpstreamEndpoints, connection: OAuthConnectionSecret, id_token: str, nonce: str
    ) -> dict[str, Any]:
        assert endpoints.jwks_uri is not None
        try:
            document = await self._http.get_json(endpoints.jwks_uri)
            keyset = jwt.PyJWKSet.from_dict(document)
            header = jwt.get_unverified_header(id_token)
            key = next(k for k in keyset.keys if k.key_id == header.get("kid") or header.get("kid") is None)
            algorithm = header.get("alg")
            if algorithm not in {"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"}:
                raise UpstreamError("ID token algorithm not allowed")
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=[algorithm],
                audience=connection.client_id,
                issuer=endpoints.issuer,
                leeway=60,
                options={"require": ["sub", "iat", "exp"]},
            )
        except UpstreamError:
            raise
        except (FetchFailed, ValueError, StopIteration, jwt.PyJWTError, KeyError) as exc:
            raise UpstreamError(
                f"ID token from the identity provider is invalid: {type(exc).__name__}"
            ) from None
        if claims.get("nonce") != nonce:
            raise UpstreamError("ID token nonce mismatch")
        return claims


def _form_escape(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
