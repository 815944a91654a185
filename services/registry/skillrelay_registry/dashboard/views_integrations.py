"""MCP server integrations (create with the token shown once, edit, rotate, delete, live sessions) and
OAuth connections."""

from __future__ import annotations

from typing import Any, Literal

from litestar import Request, Response, get, post
from litestar.params import FromPath

from skillrelay_common.schemas.audit import AUDIT_KINDS
from skillrelay_registry import schemas
from skillrelay_registry.api.common import OwnerId, Service
from skillrelay_registry.api.usage import provide_usage, usage_of
from skillrelay_registry.dashboard import forms
from skillrelay_registry.dashboard.charts import format_ms, usage_chart
from skillrelay_registry.dashboard.client_config import client_configs, install_links
from skillrelay_registry.dashboard.forms import Field, FormErrors
from skillrelay_registry.dashboard.pages import PREFIX, as_dict, page_query, redirect, render
from skillrelay_registry.dashboard.reveal import TOKEN_PAGE
from skillrelay_registry.dashboard.session import TokenReveal
from skillrelay_registry.dashboard.view_helpers import (
    Deletion,
    Editing,
    Listing,
    Rejected,
    RevealerDep,
    Rotation,
    deletion_handlers,
    editing_handlers,
    every_error,
    form_page,
    listing_handlers,
    posted_form,
    rotation_handlers,
    secret_page_handler,
    submit_form,
)
from skillrelay_registry.dashboard.views_skillsets import LIST_ALL
from skillrelay_registry.dashboard.views_try import TOKEN_FIELD, TryPanel, shown_blocks, try_handler
from skillrelay_registry.dashboard.views_try import try_panel as make_try_panel
from skillrelay_registry.errors import ServiceUnavailable
from skillrelay_registry.pagination import parse_session_query
from skillrelay_registry.service import RegistryService

SESSIONS_PER_PAGE = 20


async def _integration_fields(service: Service, owner_id: OwnerId) -> list[Field]:
    skillsets = (await service.list_skillsets(owner_id, LIST_ALL)).items
    connections = (await service.list_oauth_connections(owner_id, LIST_ALL)).items
    return forms.integration_fields(
        [(item.id, item.name) for item in skillsets], [(item.id, item.name) for item in connections]
    )


# --- integrations ---------------------------------------------------------------------------------


async def _integrations_page(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
) -> Response[str]:
    page = await service.list_integrations(owner_id, page_query(request))
    fields = await _integration_fields(service, owner_id)
    names = dict(fields[2].choices)
    usage = provide_usage(request.app.state)
    hour = {item.id: usage.book.report(item.id, "1h", usage.now()).totals for item in page.items}
    live = await service.count_live_sessions([item.id for item in page.items])
    return form_page(
        request,
        "integrations.html",
        fields,
        values or {"sessionMode": "strict", "sessionIdleMinutes": "1440", "maxSessions": "1000"},
        errors,
        integrations=[as_dict(item) for item in page.items],
        usage_hour=hour,
        live_sessions=live,
        format_ms=format_ms,
        skillset_names=names,
        next_cursor=page.cursor,
    )


@get("/integrations")
async def list_integrations(
    request: Request[Any, Any, Any], service: Service, owner_id: OwnerId
) -> Response[str]:
    return await _integrations_page(request, service, owner_id)


def _token_page(
    request: Request[Any, Any, Any], integration: dict[str, Any], reveal: TokenReveal | None
) -> Response[str]:
    """The token just created or rotated, once; then a page that says it cannot be shown again."""
    if reveal is None:
        return render(request, "token_gone.html", integration=integration)
    return render(
        request,
        "token.html",
        integration=integration,
        token=reveal.token,
        rotated=reveal.rotated,
        **_connect_context(integration, reveal.token),
    )


def _connect_context(integration: dict[str, Any], token: str | None) -> dict[str, Any]:
    """What ``_connect.html`` shows: configurations (with the token only when it is being shown once)
    and install links (never with it)."""
    oauth = integration.get("oAuthConnectionId") is not None
    name, endpoint = integration["name"], integration["endpoint"]
    return {
        "configs": client_configs(name, endpoint, token, oauth=oauth),
        "links": install_links(name, endpoint, oauth=oauth),
        "token_known": token is not None,
    }


@post("/integrations")
async def create_integration(
    request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, revealer: RevealerDep
) -> Response[str]:
    fields = await _integration_fields(service, owner_id)
    created = await submit_form(
        request,
        fields,
        schemas.IntegrationCreate,
        lambda body: service.create_integration(owner_id, body),
        shown=every_error,
    )
    if isinstance(created, Rejected):
        return await _integrations_page(
            request, service, owner_id, values=created.values, errors=created.errors
        )
    return redirect(
        request,
        revealer.hand_over(request, TOKEN_PAGE, owner_id, created.id, created.access_token, rotated=False),
    )


async def _integration_page(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    integration_id: FromPath[str],
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    try_panel: TryPanel | None = None,
    status_code: int | None = None,
    idle_errors: FormErrors | None = None,
) -> Response[str]:
    integration = as_dict(await service.get_integration(owner_id, integration_id))
    if try_panel is None:
        try_panel = await make_try_panel(
            service, owner_id, integration["skillsetId"], request.query_params.get("try")
        )
    fields = await _integration_fields(service, owner_id)
    sessions: list[dict[str, Any]] | None
    # The newest sessions first, a page at a time (?sessions=<cursor> for older ones).
    cursor = request.query_params.get("sessions")
    session_query = parse_session_query(
        [("take", str(SESSIONS_PER_PAGE)), *([("cursor", cursor)] if cursor else [])]
    )
    sessions_next: str | None = None
    try:
        listed = await service.list_integration_sessions(owner_id, integration_id, session_query)
        sessions, sessions_next, sessions_problem = (
            [as_dict(item) for item in listed.items],
            listed.cursor,
            None,
        )
    except ServiceUnavailable as exc:
        sessions, sessions_problem = None, exc.message
    window: Literal["1h", "1d"] = "1d" if request.query_params.get("usage") == "1d" else "1h"
    usage = await usage_of(service, owner_id, provide_usage(request.app.state), integration_id, window)
    return form_page(
        request,
        "integration.html",
        fields,
        values or forms.form_values(fields, integration),
        errors,
        status_code=status_code or (422 if idle_errors else None),
        idle_errors=idle_errors or FormErrors(),
        integration=integration,
        audit_kinds=AUDIT_KINDS,
        tp=try_panel,
        token_field=TOKEN_FIELD,
        shown_blocks=shown_blocks,
        skillset_names=dict(fields[2].choices),
        connection_names=dict(fields[3].choices),
        sessions=sessions,
        sessions_problem=sessions_problem,
        sessions_next=sessions_next,
        sessions_paged=cursor is not None,
        **_connect_context(integration, None),
        usage=as_dict(usage),
        usage_window=window,
        chart=usage_chart(usage),
        format_ms=format_ms,
    )


async def _rotate_token(service: RegistryService, owner_id: str, integration_id: str) -> str:
    return (await service.rotate_integration_token(owner_id, integration_id)).access_token


@post("/integrations/{integration_id:str}/sessions/end-idle")
async def end_idle_sessions(
    request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, integration_id: FromPath[str]
) -> Response[str]:
    form = await posted_form(request)
    minutes = str(form.get("idleMinutes", "")).strip()
    try:
        body = schemas.SessionEndIdle(idle_minutes=int(minutes))
        if not 1 <= body.idle_minutes <= 43_200:
            raise ValueError(minutes)
    except ValueError:
        errors = FormErrors(fields={"idleMinutes": "a whole number of minutes, from 1 to 43200"})
        return await _integration_page(request, service, owner_id, integration_id, idle_errors=errors)
    ended = await service.end_idle_sessions(owner_id, integration_id, body)
    return redirect(
        request, f"{PREFIX}/integrations/{integration_id}#sessions", "sessions-ended", count=ended.count
    )


@post("/integrations/{integration_id:str}/sessions/{session_id:str}/delete")
async def end_session(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    integration_id: FromPath[str],
    session_id: FromPath[str],
) -> Response[str]:
    await service.close_integration_session(owner_id, integration_id, session_id)
    return redirect(request, f"{PREFIX}/integrations/{integration_id}#sessions", "session-ended")


# --- OAuth connections ----------------------------------------------------------------------------


async def _connection_page(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    connection_id: FromPath[str],
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
) -> Response[str]:
    connection = as_dict(await service.get_oauth_connection(owner_id, connection_id))
    fields = forms.oauth_connection_fields(editing=True)
    values = values or forms.form_values(fields, connection)
    return form_page(request, "connection.html", fields, values, errors, connection=connection)


INTEGRATION_HANDLERS = [
    try_handler(_integration_page),
    list_integrations,
    create_integration,
    *editing_handlers(
        Editing(
            "integrations",
            _integration_page,
            _integration_fields,
            schemas.IntegrationUpdate,
            RegistryService.update_integration,
            shown=every_error,
        )
    ),
    *rotation_handlers(
        Rotation(
            TOKEN_PAGE,
            "the access token of",
            "Every client using the current token is refused from the moment the new one is shown. "
            "The new token is shown once.",
            "Rotate token",
            RegistryService.get_integration,
            _rotate_token,
        )
    ),
    secret_page_handler(TOKEN_PAGE, RegistryService.get_integration, _token_page),
    *deletion_handlers(
        Deletion(
            "integrations",
            "the integration",
            "Its token stops working and its sessions end at once. The skillset is kept.",
            "Delete integration",
            RegistryService.get_integration,
            RegistryService.delete_integration,
        )
    ),
    end_idle_sessions,
    end_session,
    *listing_handlers(
        Listing(
            "connections",
            RegistryService.list_oauth_connections,
            forms.oauth_connection_fields(editing=False),
            schemas.OAuthConnectionCreate,
            RegistryService.create_oauth_connection,
            lambda _: f"{PREFIX}/connections",
            shown=every_error,
        )
    ),
    *editing_handlers(
        Editing(
            "connections",
            _connection_page,
            forms.oauth_connection_fields(editing=True),
            schemas.OAuthConnectionUpdate,
            RegistryService.update_oauth_connection,
            shown=every_error,
        )
    ),
    *deletion_handlers(
        Deletion(
            "connections",
            "the OAuth connection",
            "Refused while an integration is gated by it. This cannot be undone.",
            "Delete connection",
            RegistryService.get_oauth_connection,
            RegistryService.delete_oauth_connection,
        )
    ),
]
