"""HTTP routes of the authorization servers: read the request, hand it to Authlib (through the
endpoint modules), write the answer.

JSON endpoints answer OAuth errors as ``{"error", "error_description"}`` (RFC 6749 section 5.2; also
``code``/``message`` like the rest of Skillrelay); browser endpoints answer an HTML page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authlib.oauth2 import OAuth2Error
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from skillrelay_auth.oauth.authorize import AuthorizationFlow, ConsentNeeded, Redirect, binding_cookie_name
from skillrelay_auth.oauth.consent_page import consent_html, error_html, page_headers
from skillrelay_auth.oauth.errors import oauth_error
from skillrelay_auth.oauth.framework import Answer
from skillrelay_auth.oauth.policy import MAX_PARAMETER_LENGTH, OAuthConfig
from skillrelay_auth.oauth.registration import register_answer
from skillrelay_auth.oauth.revoke import revoke_answer
from skillrelay_auth.oauth.server import Issuers
from skillrelay_auth.oauth.token import token_answer
from skillrelay_auth.rate_limit import RateLimiter

_JSON_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error_json(error: OAuth2Error) -> Response[Any]:
    status, body, headers = error()
    return _json(Answer(status, body, headers))


def _json(answer: Answer) -> Response[Any]:
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status >= 400 and "error" in body:
        body = {**body, "code": body["error"], "message": body.get("error_description", "")}
    headers = {**dict(answer.headers), **_JSON_HEADERS}
    headers.pop("Content-Type", None)
    return Response(body, status_code=answer.status, headers=headers)


def _error_page(error: OAuth2Error) -> Response[str]:
    return Response(
        error_html("Authorization failed", error.description or str(error.error)),
        status_code=error.status_code,
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


def _single_valued(values: Any) -> dict[str, str]:
    """OAuth parameters must not repeat (RFC 6749 section 3.1), nor be absurdly long."""
    answer: dict[str, str] = {}
    for key, value in values.multi_items():
        if key in answer:
            raise oauth_error("invalid_request", f"parameter {key} given more than once")
        if len(str(value)) > MAX_PARAMETER_LENGTH:
            raise oauth_error("invalid_request", f"parameter {key} is too long")
        answer[key] = str(value)
    return answer


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    return _single_valued(await request.form())


def oauth_routes(
    config: OAuthConfig, issuers: Callable[[], Issuers], flow: Callable[[], AuthorizationFlow]
) -> list[HTTPRouteHandler]:
    """``issuers`` and ``flow`` give their objects once the service has started (they need the
    database and NATS)."""
    secure_cookies = config.auth_public_url.startswith("https://")
    registrations = RateLimiter(config.registrations_per_minute)

    async def metadata_response(integration_id: str) -> Response[Any]:
        try:
            server = await issuers().server(integration_id)
        except OAuth2Error as error:
            return _error_json(error)
        return Response(server.metadata(), headers={"Cache-Control": "public, max-age=300"})

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
        keys = await issuers().parts.keys.jwks()
        return Response({"keys": keys}, headers={"Cache-Control": "public, max-age=60"})

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
                raise oauth_error("invalid_client_metadata", "the body must be JSON") from None
            server = await issuers().server(integration_id)
            return _json(await register_answer(server, request.headers, body))
        except OAuth2Error as error:
            return _error_json(error)

    @get("/oauth/{integration_id:str}/authorize", include_in_schema=False)
    async def authorize(integration_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            started = await flow().start(integration_id, _single_valued(request.query_params))
        except OAuth2Error as error:
            return _error_page(error)
        if isinstance(started, Redirect):
            return _redirect(started.url)
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
            params = _single_valued(request.query_params)
            browser_flow = flow()
            pending = await browser_flow.find_upstream_request(params.get("state", ""))
            binding = request.cookies.get(binding_cookie_name(pending.id))
            outcome = await browser_flow.upstream_callback(pending, params, binding)
        except OAuth2Error as error:
            return _error_page(error)
        if isinstance(outcome, ConsentNeeded):
            return Response(
                consent_html(outcome), media_type="text/html", headers=page_headers(outcome.redirect_uri)
            )
        return _redirect(outcome.url)

    @post("/oauth/consent", include_in_schema=False, status_code=303)
    async def consent(request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            form = await _form(request)
            request_id = form.get("request_id", "")
            binding = request.cookies.get(binding_cookie_name(request_id)) if request_id else None
            decision = form.get("decision")
            if decision not in ("allow", "deny"):
                raise oauth_error("invalid_request", "decision must be allow or deny")
            outcome = await flow().decide(request_id, form.get("csrf", ""), binding, decision == "allow")
        except OAuth2Error as error:
            return _error_page(error)
        expired = Cookie(
            key=binding_cookie_name(request_id), value="", path="/oauth", max_age=0, httponly=True
        )
        return _redirect(outcome.url, status=303, cookies=[expired])

    @post("/oauth/{integration_id:str}/token", include_in_schema=False, status_code=200)
    async def token(integration_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            server = await issuers().server(integration_id)
            return _json(await token_answer(server, request.headers, await _form(request)))
        except OAuth2Error as error:
            return _error_json(error)

    @post("/oauth/{integration_id:str}/revoke", include_in_schema=False, status_code=200)
    async def revoke(integration_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            server = await issuers().server(integration_id)
            return _json(await revoke_answer(server, request.headers, await _form(request)))
        except OAuth2Error as error:
            return _error_json(error)

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
