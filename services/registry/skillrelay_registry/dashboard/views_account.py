"""Signing in with an API key, signing out, and the start page."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post

from skillrelay_registry.api.common import Service
from skillrelay_registry.dashboard.pages import PREFIX, redirect, render
from skillrelay_registry.dashboard.security import request_session
from skillrelay_registry.dashboard.session import SessionCodec
from skillrelay_registry.errors import Unauthorized


@get("/", name="dashboard:home")
async def home(request: Request[Any, Any, Any]) -> Response[str]:
    signed_in = request_session(request).session.signed_in
    return redirect(request, f"{PREFIX}/skillsets" if signed_in else f"{PREFIX}/signin")


@get("/signin")
async def sign_in_page(request: Request[Any, Any, Any]) -> Response[str]:
    return render(request, "signin.html", problem=None)


def sign_in_handler(codec: SessionCodec) -> Any:
    @post("/signin")
    async def sign_in(request: Request[Any, Any, Any], service: Service) -> Response[str]:
        form = await request.form()
        api_key = form.get("apiKey")
        try:
            user = await service.identify(api_key.strip() if isinstance(api_key, str) else None)
        except Unauthorized:
            return render(request, "signin.html", status_code=401, problem="That API key is not valid.")
        # A new session (and CSRF token) on every sign-in: nothing from before carries over.
        request_session(request).replace(codec.signed_in(user.id, user.name))
        return redirect(request, f"{PREFIX}/skillsets")

    return sign_in


def sign_out_handler(codec: SessionCodec) -> Any:
    @post("/signout")
    async def sign_out(request: Request[Any, Any, Any]) -> Response[str]:
        request_session(request).replace(codec.anonymous())
        return redirect(request, f"{PREFIX}/signin", "signed-out")

    return sign_out
