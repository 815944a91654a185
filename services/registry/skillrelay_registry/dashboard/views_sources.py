"""A skillset's sources (upstream MCP servers, OpenAPI documents): each with its status (last
refresh, last error) and the tools it brings; add, refresh now, delete."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from skillrelay_registry.dashboard import forms
from skillrelay_registry.dashboard.forms import Field, FormErrors
from skillrelay_registry.dashboard.pages import PREFIX, as_dict, redirect
from skillrelay_registry.dashboard.view_helpers import (
    IN_SKILLSET,
    InSkillset,
    InSkillsetDep,
    Rejected,
    confirm_page,
    form_page,
    submit_form,
)
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


At = InSkillsetDep
SOURCES = "/sources/{skillset_id:str}"
SOURCE = SOURCES + "/{source_id:str}"


async def _sources_page(
    request: Request[Any, Any, Any],
    at: InSkillset,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
) -> Response[str]:
    skillset = await at.skillset()
    sources = (await at.service.list_sources(at.owner_id, at.skillset_id, LIST_ALL)).items
    return form_page(
        request,
        "sources.html",
        SOURCE_FIELDS,
        values or {"type": "mcp"},
        errors,
        skillset=skillset,
        sources=[as_dict(source) for source in sources],
    )


@get(SOURCES, name="dashboard:sources", dependencies=IN_SKILLSET)
async def list_sources(request: Request[Any, Any, Any], at: At) -> Response[str]:
    return await _sources_page(request, at)


@post(SOURCES, dependencies=IN_SKILLSET)
async def create_source(request: Request[Any, Any, Any], at: At) -> Response[str]:
    created = await submit_form(
        request,
        SOURCE_FIELDS,
        SourceCreate,
        lambda body: at.service.create_source(at.owner_id, at.skillset_id, body),
    )
    if isinstance(created, Rejected):
        return await _sources_page(request, at, values=created.values, errors=created.errors)
    return redirect(request, _page(at.skillset_id), "created")


@post(SOURCE + "/refresh", dependencies=IN_SKILLSET)
async def refresh_source(request: Request[Any, Any, Any], at: At, source_id: FromPath[str]) -> Response[str]:
    refreshed = await at.service.refresh_source(at.owner_id, at.skillset_id, source_id)
    return redirect(
        request, _page(at.skillset_id), "refreshed" if refreshed.status == "ok" else "refresh-failed"
    )


async def _edit_page(
    request: Request[Any, Any, Any],
    at: InSkillset,
    source_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
) -> Response[str]:
    skillset = await at.skillset()
    source = as_dict(await at.service.get_source(at.owner_id, at.skillset_id, source_id))
    shown = {key: value for key, value in source.items() if key != "headers"}
    return form_page(
        request,
        "item_form.html",
        EDIT_FIELDS,
        values or forms.form_values(EDIT_FIELDS, shown),
        errors,
        skillset=skillset,
        kind=_KIND,
        item=source,
        action=f"{_page(at.skillset_id)}/{source_id}",
    )


@get(SOURCE, dependencies=IN_SKILLSET)
async def edit_source(request: Request[Any, Any, Any], at: At, source_id: FromPath[str]) -> Response[str]:
    return await _edit_page(request, at, source_id)


def _emptied_means_none(body: dict[str, Any], form: dict[str, Any]) -> None:
    """An emptied list or prefix means "none" (the form shows them, so emptying one is a choice)."""
    for name, empty in (("include", []), ("exclude", []), ("prefix", "")):
        if name in form and not str(form[name]).strip():
            body[name] = empty


@post(SOURCE, dependencies=IN_SKILLSET)
async def update_source(request: Request[Any, Any, Any], at: At, source_id: FromPath[str]) -> Response[str]:
    saved = await submit_form(
        request,
        EDIT_FIELDS,
        SourceUpdate,
        lambda body: at.service.update_source(at.owner_id, at.skillset_id, source_id, body),
        adjust=_emptied_means_none,
    )
    if isinstance(saved, Rejected):
        return await _edit_page(request, at, source_id, values=saved.values, errors=saved.errors)
    return redirect(request, _page(at.skillset_id), "saved")


@get(SOURCE + "/delete", dependencies=IN_SKILLSET)
async def confirm_delete_source(
    request: Request[Any, Any, Any], at: At, source_id: FromPath[str]
) -> Response[str]:
    source = await at.service.get_source(at.owner_id, at.skillset_id, source_id)
    return confirm_page(
        request,
        f"{_page(at.skillset_id)}/{source_id}/delete",
        _page(at.skillset_id),
        title=f"Delete the source “{source.name}”?",
        message=f"The {len(source.tools)} tools, resources and prompts it brings leave the skillset.",
        label="Delete source",
    )


@post(SOURCE + "/delete", dependencies=IN_SKILLSET)
async def delete_source(request: Request[Any, Any, Any], at: At, source_id: FromPath[str]) -> Response[str]:
    await at.service.delete_source(at.owner_id, at.skillset_id, source_id)
    return redirect(request, _page(at.skillset_id), "deleted")


SOURCE_HANDLERS = [
    list_sources,
    create_source,
    edit_source,
    update_source,
    refresh_source,
    confirm_delete_source,
    delete_source,
]
