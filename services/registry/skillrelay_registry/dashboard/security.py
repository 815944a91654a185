"""What keeps the dashboard safe: the session middleware (session in, cookie out), security headers on
every answer, and the CSRF check on every state-changing request.

CSRF: each session has a random token; every form carries it as ``_csrf`` and every htmx request as
the ``X-CSRF-Token`` header (set once on ``<body hx-headers>``). A POST whose token does not match the
session's, or whose ``Origin`` is another site, is refused with 403 before any handler runs. The
``SameSite=Strict`` cookie is a second, independent guard.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any, cast
from urllib.parse import urlsplit

from litestar import Request, Response
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from skillrelay_registry.dashboard.session import (
    ANONYMOUS_SECONDS,
    COOKIE_NAME,
    COOKIE_PATH,
    DashboardSession,
    SessionCodec,
)

SCOPE_KEY = "skillrelay.dashboard"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# No inline script or style anywhere: htmx is configured (meta htmx-config) not to inject styles or
# evaluate code, and the dashboard's own behaviour lives in static/dashboard.js.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # Not "no-referrer": with it browsers send "Origin: null" on form POSTs, which the origin check
    # below would (rightly) refuse. Dashboard URLs carry no secrets; other sites get no referrer.
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), clipboard-write=(self)",
}


@dataclass
class RequestSession:
    """The session of one request, and what the answer must do with the cookie."""

    session: DashboardSession
    # Set when the cookie must be (re)written: a new anonymous session, sign-in, or sign-out.
    cookie_out: DashboardSession | None = None
    clear_cookie: bool = False
    # Further complete Set-Cookie values for the answer (the token shown once, a notice).
    extra_cookies: list[str] = field(default_factory=list)
    secure_cookies: bool = False

    def add_cookie(self, name: str, value: str, *, path: str, max_age: int) -> None:
        self.extra_cookies.append(
            set_cookie(name, value, path=path, max_age=max_age, secure=self.secure_cookies)
        )

    def replace(self, session: DashboardSession) -> None:
        self.session = session
        self.cookie_out = session
        self.clear_cookie = False


def request_session(request: Request[Any, Any, Any]) -> RequestSession:
    holder = cast(dict[str, Any], request.scope).get(SCOPE_KEY)
    if not isinstance(holder, RequestSession):
        raise RuntimeError("the dashboard session middleware did not run")
    return holder


def _cookie_value(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header is the same as none
                return None
            morsel = jar.get(COOKIE_NAME)
            if morsel is not None:
                return morsel.value
    return None


class DashboardMiddleware(ASGIMiddleware):
    """Loads the session before the handler; adds security headers and the cookie to the answer."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, codec: SessionCodec, *, secure_cookie: bool) -> None:
        self.codec = codec
        self.secure_cookie = secure_cookie

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        session = self.codec.decode(_cookie_value(scope))
        holder = RequestSession(session) if session is not None else None
        # An ageing anonymous session is renewed on page loads only: a POST is judged by the session
        # its form was rendered with.
        renew = (
            holder is not None
            and cast(dict[str, Any], scope).get("method") in SAFE_METHODS
            and not holder.session.signed_in
            and self.codec.max_age(holder.session) < ANONYMOUS_SECONDS // 2
        )
        if holder is None or renew:
            fresh = self.codec.anonymous()
            holder = RequestSession(fresh, cookie_out=fresh)
        holder.secure_cookies = self.secure_cookie
        cast(dict[str, Any], scope)[SCOPE_KEY] = holder
        is_static = scope["path"].startswith(f"{COOKIE_PATH}/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if not is_static:
                    # Pages may show a token once: never keep them in any cache.
                    headers["cache-control"] = "no-store"
                    cookie = self._set_cookie(holder)
                    if cookie:
                        headers.add("set-cookie", cookie)
                    for extra in holder.extra_cookies:
                        headers.add("set-cookie", extra)
            await send(message)

        await next_app(scope, receive, send_with_headers)

    def _set_cookie(self, holder: RequestSession) -> str:
        if holder.clear_cookie:
            value, max_age = "", 0
        elif holder.cookie_out is not None:
            value, max_age = self.codec.encode(holder.cookie_out), self.codec.max_age(holder.cookie_out)
        else:
            return ""
        return set_cookie(COOKIE_NAME, value, path=COOKIE_PATH, max_age=max_age, secure=self.secure_cookie)


def set_cookie(name: str, value: str, *, path: str, max_age: int, secure: bool) -> str:
    """A ``Set-Cookie`` value: always ``HttpOnly`` and ``SameSite=Strict``; ``Secure`` behind https."""
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def _same_origin(request: Request[Any, Any, Any]) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not sent by every browser on same-origin POSTs; the token still decides
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


async def csrf_guard(request: Request[Any, Any, Any]) -> Response[str] | None:
    """``before_request`` hook of the dashboard router: refuse state changes without the token."""
    if request.method in SAFE_METHODS:
        return None
    expected = request_session(request).session.csrf_token
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not _same_origin(request) or sent is None or not hmac.compare_digest(sent.encode(), expected.encode()):
        from skillrelay_registry.dashboard.pages import render  # pages imports this module

        return render(
            request,
            "error.html",
            status_code=403,
            title="Not accepted",
            message="This form has expired or did not come from this dashboard. "
            "Reload the page and try again.",
        )
    return None
