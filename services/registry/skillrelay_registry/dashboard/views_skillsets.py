"""Skillsets and their abilities (tools), resources and prompts: list, create, edit, delete."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from skillrelay_registry import schemas
from skillrelay_registry.api.common import OwnerId, Service
from skillrelay_registry.dashboard import forms, handler_form
from skillrelay_registry.dashboard.forms import Field, FormErrors
from skillrelay_registry.dashboard.pages import PREFIX, as_dict, page_query, redirect, render
from skillrelay_registry.errors import InvalidInput, NotFoundError, RegistryError
from skillrelay_registry.kinds import ABILITY, PROMPT, RESOURCE, ContentKind
from skillrelay_registry.pagination import MAX_TAKE, ListQuery

LIST_ALL = ListQuery(take=MAX_TAKE, order="asc")


@dataclass(frozen=True)
class ChildKind:
    """The dashboard's side of a ``ContentKind``: its form's fields and a new item's example values."""

    content: ContentKind[Any, Any]
    fields: list[Field]
    example: dict[str, str]

    @property
    def slug(self) -> str:
        return self.content.plural

    @property
    def singular(self) -> str:
        return self.content.name

    @property
    def title(self) -> str:
        return self.content.title


CHILD_KINDS = {
    kind.slug: kind
    for kind in (
        ChildKind(
            ABILITY,
            forms.ABILITY_FIELDS,
            {"inputSchema": forms.INPUT_SCHEMA_EXAMPLE, "handler": forms.STATIC_HANDLER_EXAMPLE},
        ),
        ChildKind(RESOURCE, forms.RESOURCE_FIELDS, {"mimeType": "text/plain"}),
        ChildKind(PROMPT, forms.PROMPT_FIELDS, {"arguments": "[]", "messages": "[]"}),
    )
}


def _kind(slug: str) -> ChildKind:
    kind = CHILD_KINDS.get(slug)
    if kind is None:
        raise NotFoundError("page")
    return kind


async def _form(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return dict((await request.form()).items())


# --- skillsets ------------------------------------------------------------------------------------


async def _skillsets_page(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
) -> Response[str]:
    page = await service.list_skillsets(owner_id, page_query(request))
    return render(
        request,
        "skillsets.html",
        status_code=422 if errors else 200,
        skillsets=[as_dict(item) for item in page.items],
        next_cursor=page.cursor,
        fields=forms.SKILLSET_FIELDS,
        values=values or {},
        errors=errors or FormErrors(),
    )


@get("/skillsets", name="dashboard:skillsets")
async def list_skillsets(
    request: Request[Any, Any, Any], service: Service, owner_id: OwnerId
) -> Response[str]:
    return await _skillsets_page(request, service, owner_id)


@post("/skillsets")
async def create_skillset(
    request: Request[Any, Any, Any], service: Service, owner_id: OwnerId
) -> Response[str]:
    form = await _form(request)
    try:
        body, errors = forms.read_form(forms.SKILLSET_FIELDS, form)
        created = await service.create_skillset(owner_id, forms.to_body(body, schemas.SkillsetCreate, errors))
    except FormErrors as exc:
        return await _skillsets_page(
            request, service, owner_id, values=forms.posted_values(forms.SKILLSET_FIELDS, form), errors=exc
        )
    except InvalidInput as exc:
        return await _skillsets_page(
            request,
            service,
            owner_id,
            values=forms.posted_values(forms.SKILLSET_FIELDS, form),
            errors=forms.registry_errors(exc),
        )
    return redirect(request, f"{PREFIX}/skillsets/{created.id}", "created")


async def _skillset_page(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: FromPath[str],
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
) -> Response[str]:
    skillset = as_dict(await service.get_skillset(owner_id, skillset_id))
    children = {
        slug: [
            as_dict(item)
            for item in (await service.list_content(kind.content, owner_id, skillset_id, LIST_ALL)).items
        ]
        for slug, kind in CHILD_KINDS.items()
    }
    return render(
        request,
        "skillset.html",
        status_code=422 if errors else 200,
        skillset=skillset,
        children=children,
        fields=forms.SKILLSET_FIELDS,
        values=values or forms.form_values(forms.SKILLSET_FIELDS, skillset),
        errors=errors or FormErrors(),
    )


@get("/skillsets/{skillset_id:str}")
async def show_skillset(
    request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, skillset_id: FromPath[str]
) -> Response[str]:
    return await _skillset_page(request, service, owner_id, skillset_id)


@post("/skillsets/{skillset_id:str}")
async def update_skillset(
    request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, skillset_id: FromPath[str]
) -> Response[str]:
    form = await _form(request)
    try:
        body, errors = forms.read_form(forms.SKILLSET_FIELDS, form)
        await service.update_skillset(
            owner_id, skillset_id, forms.to_body(body, schemas.SkillsetUpdate, errors)
        )
    except (FormErrors, InvalidInput) as exc:
        errors = exc if isinstance(exc, FormErrors) else forms.registry_errors(exc)
        return await _skillset_page(
            request,
            service,
            owner_id,
            skillset_id,
            values=forms.posted_values(forms.SKILLSET_FIELDS, form),
            errors=errors,
        )
    return redirect(request, f"{PREFIX}/skillsets/{skillset_id}", "saved")


@get("/skillsets/{skillset_id:str}/delete")
async def confirm_delete_skillset(
    request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, skillset_id: FromPath[str]
) -> Response[str]:
    skillset = await service.get_skillset(owner_id, skillset_id)
    return render(
        request,
        "confirm.html",
        title=f"Delete the skillset “{skillset.name}”?",
        message="Its abilities, resources and prompts are deleted with it. This cannot be undone.",
        action=f"{PREFIX}/skillsets/{skillset_id}/delete",
        confirm_label="Delete skillset",
        cancel=f"{PREFIX}/skillsets/{skillset_id}",
        danger=True,
    )


@post("/skillsets/{skillset_id:str}/delete")
async def delete_skillset(
    request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, skillset_id: FromPath[str]
) -> Response[str]:
    await service.delete_skillset(owner_id, skillset_id)
    return redirect(request, f"{PREFIX}/skillsets", "deleted")


# --- abilities, resources, prompts ----------------------------------------------------------------


async def _child_form_page(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: FromPath[str],
    kind: ChildKind,
    *,
    item: dict[str, Any] | None,
    values: dict[str, str],
    errors: FormErrors | None = None,
) -> Response[str]:
    skillset = as_dict(await service.get_skillset(owner_id, skillset_id))
    base = f"{PREFIX}/skillsets/{skillset_id}/{kind.slug}"
    return render(
        request,
        "item_form.html",
        status_code=422 if errors else 200,
        skillset=skillset,
        kind=kind,
        item=item,
        action=f"{base}/{item['id']}" if item else base,
        fields=kind.fields,
        values=values,
        errors=errors or FormErrors(),
        handler_kinds=handler_form.KINDS,
        http_methods=handler_form.HTTP_METHODS,
    )


def _handler_values(kind: ChildKind, handler: Any) -> dict[str, str]:
    """An ability's handler also as the inputs of its kind's form."""
    return handler_form.handler_values(handler) if kind.slug == "abilities" else {}


@get("/skillsets/{skillset_id:str}/{kind_slug:str}/new")
async def new_child(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: FromPath[str],
    kind_slug: FromPath[str],
) -> Response[str]:
    kind = _kind(kind_slug)
    values = dict(kind.example)
    if "handler" in values:
        values |= _handler_values(kind, json.loads(values["handler"]))
    return await _child_form_page(request, service, owner_id, skillset_id, kind, item=None, values=values)


async def _save_child(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: FromPath[str],
    kind: ChildKind,
    item_id: FromPath[str] | None,
) -> Response[str]:
    posted = await _form(request)
    item = (
        None
        if item_id is None
        else as_dict(await service.get_content(kind.content, owner_id, skillset_id, item_id))
    )
    form = posted
    try:
        if kind.slug == "abilities":
            try:
                form = handler_form.with_handler(posted)
            except handler_form.HandlerFormError as exc:
                raise FormErrors(fields={"handler": str(exc)}) from None
        body, errors = forms.read_form(kind.fields, form)
        if item_id is None:
            data = forms.to_body(body, kind.content.create_body, errors)
            await service.create_content(kind.content, owner_id, skillset_id, data)
        else:
            data = forms.to_body(body, kind.content.update_body, errors)
            await service.update_content(kind.content, owner_id, skillset_id, item_id, data)
    except (FormErrors, RegistryError) as exc:
        if isinstance(exc, RegistryError) and exc.status not in {400, 409}:
            raise
        errors = exc if isinstance(exc, FormErrors) else forms.registry_errors(exc)
        return await _child_form_page(
            request,
            service,
            owner_id,
            skillset_id,
            kind,
            item=item,
            values=forms.posted_values(kind.fields, form)
            | {name: str(posted[name]) for name in handler_form.FIELDS if name in posted},
            errors=errors,
        )
    return redirect(
        request, f"{PREFIX}/skillsets/{skillset_id}#{kind.slug}", "created" if item_id is None else "saved"
    )


@post("/skillsets/{skillset_id:str}/{kind_slug:str}")
async def create_child(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: FromPath[str],
    kind_slug: FromPath[str],
) -> Response[str]:
    return await _save_child(request, service, owner_id, skillset_id, _kind(kind_slug), None)


@get("/skillsets/{skillset_id:str}/{kind_slug:str}/{item_id:str}")
async def edit_child(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: FromPath[str],
    kind_slug: FromPath[str],
    item_id: FromPath[str],
) -> Response[str]:
    kind = _kind(kind_slug)
    item = as_dict(await service.get_content(kind.content, owner_id, skillset_id, item_id))
    values = forms.form_values(kind.fields, item) | _handler_values(kind, item.get("handler"))
    return await _child_form_page(request, service, owner_id, skillset_id, kind, item=item, values=values)


@post("/skillsets/{skillset_id:str}/{kind_slug:str}/{item_id:str}")
async def update_child(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: FromPath[str],
    kind_slug: FromPath[str],
    item_id: FromPath[str],
) -> Response[str]:
    return await _save_child(request, service, owner_id, skillset_id, _kind(kind_slug), item_id)


@get("/skillsets/{skillset_id:str}/{kind_slug:str}/{item_id:str}/delete")
async def confirm_delete_child(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: FromPath[str],
    kind_slug: FromPath[str],
    item_id: FromPath[str],
) -> Response[str]:
    kind = _kind(kind_slug)
    item = as_dict(await service.get_content(kind.content, owner_id, skillset_id, item_id))
    base = f"{PREFIX}/skillsets/{skillset_id}"
    return render(
        request,
        "confirm.html",
        title=f"Delete the {kind.singular} “{item['name']}”?",
        message="Clients with an open session are told at once that the list changed.",
        action=f"{base}/{kind.slug}/{item_id}/delete",
        confirm_label=f"Delete {kind.singular}",
        cancel=f"{base}/{kind.slug}/{item_id}",
        danger=True,
    )


@post("/skillsets/{skillset_id:str}/{kind_slug:str}/{item_id:str}/delete")
async def delete_child(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    skillset_id: FromPath[str],
    kind_slug: FromPath[str],
    item_id: FromPath[str],
) -> Response[str]:
    kind = _kind(kind_slug)
    await service.delete_content(kind.content, owner_id, skillset_id, item_id)
    return redirect(request, f"{PREFIX}/skillsets/{skillset_id}#{kind.slug}", "deleted")


@post("/validate/{check:str}/{field_name:str}")
async def validate_field(
    request: Request[Any, Any, Any], owner_id: OwnerId, check: FromPath[str], field_name: FromPath[str]
) -> Response[str]:
    """Live feedback while typing JSON (htmx): the REST API's own rules for that input."""
    del owner_id  # signed-in owners only
    form = await request.form()
    value = form.get(field_name)
    problem = forms.check_json_field(check, value if isinstance(value, str) else "", field_name)
    return render(request, "_feedback.html", problem=problem)


SKILLSET_HANDLERS = [
    list_skillsets,
    create_skillset,
    show_skillset,
    update_skillset,
    confirm_delete_skillset,
    delete_skillset,
    new_child,
    create_child,
    edit_child,
    update_child,
    confirm_delete_child,
    delete_child,
    validate_field,
]
