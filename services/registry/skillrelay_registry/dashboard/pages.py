"""Rendering pages and the dependencies every dashboard handler shares.

Handlers only read the form, call ``RegistryService`` and render; these helpers do the rest: the
template context (CSRF token, who is signed in), redirects that work for plain forms and htmx alike,
and turning the service's errors into pages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response
from litestar.plugins.jinja import JinjaTemplateEngine

from skillrelay_registry.dashboard.security import CSRF_FIELD, request_session
from skillrelay_registry.errors import RegistryError
from skillrelay_registry.pagination import MAX_TAKE, ListQuery, parse_list_query

TEMPLATES = Path(__file__).parent / "templates"
PREFIX = "/dashboard"
NOTICE_COOKIE = "skillrelay_notice"
# What a page says after the change that led to it; the cookie carries only the key.
NOTICES = {
    "created": "Created.",
    "saved": "Saved.",
    "deleted": "Deleted.",
    "refreshed": "Read again.",
    "refresh-failed": "Could not be read: see its last error.",
    "session-ended": "The session was ended.",
    "sessions-ended": "Sessions ended: {count}.",
    "signed-out": "You are signed out.",
}

_engine = JinjaTemplateEngine(
    engine_instance=Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
)


class SignInRequired(Exception):
    """Raised by the ``owner_id`` dependency when nobody is signed in."""


def render(
    request: Request[Any, Any, Any], template: str, *, status_code: int = 200, **context: Any
) -> Response[str]:
    session = request_session(request).session
    html = _engine.get_template(template).render(
        csrf_token=session.csrf_token,
        csrf_field=CSRF_FIELD,
        signed_in=session.signed_in,
        owner_id=session.owner_id,
        owner_name=session.owner_name,
        path=request.url.path,
        request_query=request.url.query,
        prefix=PREFIX,
        notice=_take_notice(request),
        **context,
    )
    return Response(html, status_code=status_code, media_type="text/html; charset=utf-8")


def redirect(
    request: Request[Any, Any, Any], path: str, notice: str | None = None, *, count: int | None = None
) -> Response[str]:
    """After a successful POST: 303 See Other. A boosted htmx request follows it like the browser
    would, swaps in the page and pushes its URL, so plain forms and htmx behave the same. ``notice``
    (a key of ``NOTICES``) is shown once on the next page, as a status message."""
    if notice is not None:
        value = notice if count is None else f"{notice}:{count}"
        request_session(request).add_cookie(NOTICE_COOKIE, value, path=PREFIX, max_age=60)
    return Response("", status_code=303, headers={"Location": path})


def _take_notice(request: Request[Any, Any, Any]) -> str | None:
    key = request.cookies.get(NOTICE_COOKIE)
    if key is None:
        return None
    request_session(request).add_cookie(NOTICE_COOKIE, "", path=PREFIX, max_age=0)
    key, _, count = key.partition(":")
    text = NOTICES.get(key)
    if text is None or "{count}" not in text:
        return text
    return text.format(count=int(count)) if count.isdigit() else None


def error_page(request: Request[Any, Any, Any], exc: RegistryError) -> Response[str]:
    return render(
        request,
        "error.html",
        status_code=exc.status,
        title=_ERROR_TITLES.get(exc.status, "Error"),
        message=exc.message,
    )


_ERROR_TITLES = {
    400: "Not accepted",
    404: "Not found",
    409: "Not possible right now",
    503: "A service is unavailable",
}


def page_query(request: Request[Any, Any, Any]) -> ListQuery:
    """A list page: 100 records, oldest first, after the ``cursor`` of the previous page if given."""
    cursor = request.query_params.get("cursor")
    return parse_list_query(
        [("take", str(MAX_TAKE)), ("order", "asc"), *([("cursor", cursor)] if cursor else [])]
    )


def as_dict(record: msgspec.Struct) -> dict[str, Any]:
    """A record as the REST API shows it (camelCase keys)."""
    result = msgspec.to_builtins(record)
    assert isinstance(result, dict)
    return result


def owner_of(request: Request[Any, Any, Any]) -> str:
    owner = request_session(request).session.owner_id
    if owner is None:
        raise SignInRequired
    return owner


async def provide_owner_id(request: Request[Any, Any, Any]) -> str:
    return owner_of(request)


def sign_in_redirect(request: Request[Any, Any, Any], _: SignInRequired) -> Response[str]:
    return redirect(request, f"{PREFIX}/signin")


def registry_error_page(request: Request[Any, Any, Any], exc: RegistryError) -> Response[str]:
    return error_page(request, exc)
