"""A skillset's sources (upstream MCP servers, OpenAPI documents): each with its status (last
refresh, last error) and the tools it brings; add, refresh now, delete."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from skillrelay_registry.api.common import OwnerId, Service
from skillrelay_registry.dashboard import forms
from skillrelay_registry.dashboard.forms import Field, FormErrors
from skillrelay_registry.dashboard.pages import PREFIX, as_dict, redirect, render
from skillrelay_registry.errors import InvalidInput
from skillrelay_registry.pagination import MAX_TAKE, ListQuery
from skillrelay_registry.sources.schemas import SourceCreate, SourceUpdate

SOURCE_FIELDS = [
    Field(
        "type",
        "Type",
        "select",
        required=True,
        choices=(("mcp", "MCP server"), ("openapi", "OpenAPI document")),
    ),
    Field("name", "Name", hint="Default: the document's title or the URL's host."),
    Field("url", "URL", hint="MCP: the upstream's endpoint. OpenAPI: where the JSON document is read."),
    Field(
        "baseUrl",
        "Base URL (OpenAPI)",
        hint="Where operations are called, unless the document's servers say.",
    ),
    Field("document", "OpenAPI document (instead of a URL)", "json", rows=6),
    Field(
        "headers",
        "Headers",
        "json",
        hint='Sent to the upstream, e.g. {"Authorization": "Bearer …"}. Stored encrypted, never shown again.',
    ),
    Field("prefix", "Name prefix", hint="Put before every tool and prompt name, e.g. github_"),
    Field("include", "Include", "words", hint="Only these upstream names (patterns like get_* work)."),
    Field("exclude", "Exclude", "words", hint="Leave these upstream names out."),
    Field("timeoutMs", "Timeout (ms)", "integer", hint="Per request to the upstream, 100 to 120000."),
]
# Editing: every field but the type and an inline document; an empty input leaves the field as it is
# (headers too: they are never shown, so an empty box keeps the stored ones).
EDIT_FIELDS = [field for field in SOURCE_FIELDS if field.name not in ("type", "document")]
LIST_ALL = ListQuery(take=MAX_TAKE, order="asc")
_KIND = {"title": "Source", "singular": "source"}


def _page(skillset_id: str) -> str:
    return f"{PREFIX}/sources/{skillset_id}"


async def _sources_page(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
) -> Response[str]:
    skillset = as_dict(await service.get_skillset(owner_id, skillset_id))
    sources = (await service.list_sources(owner_id, skillset_id, LIST_ALL)).items
    return render(
        request,
        "sources.html",
        status_code=422 if errors else 200,
        skillset=skillset,
        sources=[as_dict(source) for source in sources],
        fields=SOURCE_FIELDS,
        values=values or {"type": "mcp"},
        errors=errors or FormErrors(),
    )


@get("/sources/{skillset_id:str}", name="dashboard:sources")
async def list_sources(
    request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, skillset_id: FromPath[str]
) -> Response[str]:
    return await _sources_page(request, service, owner_id, skillset_id)


@post("/sources/{skillset_id:str}")
async def create_source(
    request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, skillset_id: FromPath[str]
) -> Response[str]:
    form = dict((await request.form()).items())
    try:
        body, errors = forms.read_form(SOURCE_FIELDS, form)
        await service.create_source(owner_id, skillset_id, forms.to_body(body, SourceCreate, errors))
    except (FormErrors, InvalidInput) as exc:
        errors = exc if isinstance(exc, FormErrors) else forms.registry_errors(exc)
        return await _sources_page(
            request,
            service,
            owner_id,
            skillset_id,
            values=forms.posted_values(SOURCE_FIELDS, form),
            errors=errors,
        )
    return redirect(request, _page(skillset_id), "created")


@post("/sources/{skillset_id:str}/{source_id:str}/refresh")
async def refresh_source(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: FromPath[str],
    source_id: FromPath[str],
) -> Response[str]:
    refreshed = await service.refresh_source(owner_id, skillset_id, source_id)
    return redirect(
        request, _page(skillset_id), "refreshed" if refreshed.status == "ok" else "refresh-failed"
    )


async def _edit_page(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: str,
    source_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
) -> Response[str]:
    skillset = as_dict(await service.get_skillset(owner_id, skillset_id))
    source = as_dict(await service.get_source(owner_id, skillset_id, source_id))
    shown = {key: value for key, value in source.items() if key != "headers"}
    return render(
        request,
        "item_form.html",
        status_code=422 if errors else 200,
        skillset=skillset,
        kind=_KIND,
        item=source,
        action=f"{_page(skillset_id)}/{source_id}",
        fields=EDIT_FIELDS,
        values=values or forms.form_values(EDIT_FIELDS, shown),
        errors=errors or FormErrors(),
    )


@get("/sources/{skillset_id:str}/{source_id:str}")
async def edit_source(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: FromPath[str],
    source_id: FromPath[str],
) -> Response[str]:
    return await _edit_page(request, service, owner_id, skillset_id, source_id)


@post("/sources/{skillset_id:str}/{source_id:str}")
async def update_source(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: FromPath[str],
    source_id: FromPath[str],
) -> Response[str]:
    form = dict((await request.form()).items())
    try:
        body, errors = forms.read_form(EDIT_FIELDS, form)
        # An emptied list or prefix means "none" (the form shows them, so emptying one is a choice).
        for name, empty in (("include", []), ("exclude", []), ("prefix", "")):
            if name in form and not str(form[name]).strip():
                body[name] = empty
        await service.update_source(
            owner_id, skillset_id, source_id, forms.to_body(body, SourceUpdate, errors)
        )
    except (FormErrors, InvalidInput) as exc:
        errors = exc if isinstance(exc, FormErrors) else forms.registry_errors(exc)
        values = forms.posted_values(EDIT_FIELDS, form)
        return await _edit_page(
            request, service, owner_id, skillset_id, source_id, values=values, errors=errors
        )
    return redirect(request, _page(skillset_id), "saved")


@get("/sources/{skillset_id:str}/{source_id:str}/delete")
async def confirm_delete_source(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: FromPath[str],
    source_id: FromPath[str],
) -> Response[str]:
    source = await service.get_source(owner_id, skillset_id, source_id)
    return render(
        request,
        "confirm.html",
        title=f"Delete the source “{source.name}”?",
        message=f"The {len(source.tools)} tools, resources and prompts it brings leave the skillset.",
        action=f"{_page(skillset_id)}/{source_id}/delete",
        confirm_label="Delete source",
        cancel=_page(skillset_id),
        danger=True,
    )


@post("/sources/{skillset_id:str}/{source_id:str}/delete")
async def delete_source(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: FromPath[str],
    source_id: FromPath[str],
) -> Response[str]:
    await service.delete_source(owner_id, skillset_id, source_id)
    return redirect(request, _page(skillset_id), "deleted")


SOURCE_HANDLERS = [
    list_sources,
    create_source,
    edit_source,
    update_source,
    refresh_source,
    confirm_delete_source,
    delete_source,
]
