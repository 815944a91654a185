"""HTTP routes of the authorization server: decode, call ``AuthorizationServer``, encode.

JSON endpoints answer OAuth errors as ``{"error", "error_description"}`` (RFC 6749 section 5.2; also
``code``/``message`` like the rest of Skillrelay); browser endpoints answer an HTML page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from skillrelay_auth.consent_page import consent_html, error_html, page_headers
from skillrelay_auth.oauth_service import (
    AuthorizationServer,
    ConsentNeeded,
    OAuthConfig,
    OAuthError,
    RedirectWithError,
    binding_cookie_name,
)
from skillrelay_auth.rate_limit import RateLimiter

_JSON_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error_json(exc: OAuthError) -> Response[Any]:
    headers = dict(_JSON_HEADERS)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="skillrelay"'
    body = {
        "error": exc.error,
        "error_description": exc.description,
        "code": exc.error,
        "message": exc.description,
    }
    return Response(body, status_code=exc.status, headers=headers)


def _oauth_error_page(exc: OAuthError) -> Response[str]:
    return Response(
        error_html("Authorization failed", exc.description),
        status_code=exc.status,
        media_type="text/html",
        headers=page_headers(),
    )


def _redirect(url: str, *, status: int = 302, cookies: list[Cookie] | None = None) -> Response[bytes]:
    return Response(
        b"",
        status_code=status,
        headers={"Location": url, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        cookies=cookies or [],
    )


async def _single_valued(values: Any) -> dict[str, str]:
    """OAuth parameters must not repeat (RFC 6749 section 3.1)."""
    answer: dict[str, str] = {}
    for key, value in values.multi_items():
        if key in answer:
            raise OAuthError("invalid_request", f"parameter {key} given more than once")
        answer[key] = str(value)
    return answer


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "malformed Basic credentials", 401)
    return unquote(client_id), unquote(secret)


def oauth_routes(config: OAuthConfig, current: Callable[[], AuthorizationServer]) -> list[HTTPRouteHandler]:
    """``current`` gives the server once the service has started (it needs the database and NATS)."""
    secure_cookies = config.auth_public_url.startswith("https://")
    registrations = RateLimiter(config.registrations_per_minute)

    async def metadata_response(integration_id: FromPath[str]) -> Response[Any]:
        server = current()
        try:
            await server.oauth_integration(integration_id)
        except OAuthError as exc:
            return _oauth_error_json(exc)
        return Response(server.metadata(integration_id), headers={"Cache-Control": "public, max-age=300"})

    @get("/.well-known/oauth-authorization-server/oauth/{integration_id:str}", include_in_schema=False)
    async def authorization_server_metadata(integration_id: FromPath[str]) -> Response[Any]:
        return await metadata_response(integration_id)

    @get("/.well-known/openid-configuration/oauth/{integration_id:str}", include_in_schema=False)
    async def openid_configuration_inserted(integration_id: FromPath[str]) -> Response[Any]:
        return await metadata_response(integration_id)

    @get("/oauth/{integration_id:str}/.well-known/openid-configuration", include_in_schema=False)
    async def openid_configuration_appended(integration_id: FromPath[str]) -> Response[Any]:
        return await metadata_response(integration_id)

    @get("/oauth/{integration_id:str}/jwks", include_in_schema=False)
    async def jwks(integration_id: FromPath[str]) -> Response[Any]:
        return Response({"keys": await current().jwks()}, headers={"Cache-Control": "public, max-age=60"})

    @post("/oauth/{integration_id:str}/register", include_in_schema=False)
    async def register(integration_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
        wait = registrations.acquire(request.client.host if request.client else "unknown")
        if wait is not None:
            return Response(
                {
                    "error": "too_many_requests",
                    "error_description": "too many client registrations; retry later",
                },
                status_code=429,
                headers={**_JSON_HEADERS, "Retry-After": str(max(1, round(wait)))},
            )
        try:
            try:
                body = await request.json()
            except Exception:
                raise OAuthError("invalid_client_metadata", "the body must be JSON") from None
            answer = await current().register_client(integration_id, body)
        except OAuthError as exc:
            return _oauth_error_json(exc)
        return Response(answer, status_code=201, headers=_JSON_HEADERS)

    @get("/oauth/{integration_id:str}/authorize", include_in_schema=False)
    async def authorize(integration_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            params = await _single_valued(request.query_params)
            started = await current().authorize(integration_id, params)
        except RedirectWithError as redirect:
            return _redirect(redirect.url)
        except OAuthError as exc:
            return _oauth_error_page(exc)
        cookie = Cookie(
            key=binding_cookie_name(started.request_id),
            value=started.binding,
            path="/oauth",
            max_age=config.request_ttl,
            httponly=True,
            samesite="lax",
            secure=secure_cookies,
        )
        return _redirect(started.upstream_url, cookies=[cookie])

    @get("/oauth/callback", include_in_schema=False)
    async def upstream_callback(request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            params = await _single_valued(request.query_params)
            server = current()
            pending = await server.find_upstream_request(params.get("state", ""))
            binding = request.cookies.get(binding_cookie_name(pending.id))
            outcome = await server.upstream_callback(pending, params, binding)
        except OAuthError as exc:
            return _oauth_error_page(exc)
        if isinstance(outcome, ConsentNeeded):
            return Response(
                consent_html(outcome), media_type="text/html", headers=page_headers(outcome.redirect_uri)
            )
        return _redirect(outcome.url)

    @post("/oauth/consent", include_in_schema=False, status_code=303)
    async def consent(request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            form = await _single_valued(await request.form())
            request_id = form.get("request_id", "")
            binding = request.cookies.get(binding_cookie_name(request_id)) if request_id else None
            decision = form.get("decision")
            if decision not in ("allow", "deny"):
                raise OAuthError("invalid_request", "decision must be allow or deny")
            outcome = await current().decide(request_id, form.get("csrf", ""), binding, decision == "allow")
        except OAuthError as exc:
            return _oauth_error_page(exc)
        expired = Cookie(
            key=binding_cookie_name(request_id), value="", path="/oauth", max_age=0, httponly=True
        )
        return _redirect(outcome.url, status=303, cookies=[expired])

    @post("/oauth/{integration_id:str}/token", include_in_schema=False, status_code=200)
    async def token(integration_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            form = await _single_valued(await request.form())
            basic = _basic_credentials(request.headers.get("Authorization"))
            answer = await current().token(integration_id, form, basic)
        except OAuthError as exc:
            return _oauth_error_json(exc)
        return Response(answer, headers=_JSON_HEADERS)

    @post("/oauth/{integration_id:str}/revoke", include_in_schema=False, status_code=200)
    async def revoke(integration_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            form = await _single_valued(await request.form())
            basic = _basic_credentials(request.headers.get("Authorization"))
            await current().revoke(integration_id, form, basic)
        except OAuthError as exc:
            return _oauth_error_json(exc)
        return Response({}, headers=_JSON_HEADERS)

    return [
        authorization_server_metadata,
        openid_configuration_inserted,
        openid_configuration_appended,
        jwks,
        register,
        authorize,
        upstream_callback,
        consent,
        token,
        revoke,
    ]
