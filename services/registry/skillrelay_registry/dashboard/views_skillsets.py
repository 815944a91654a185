"""Skillsets and their abilities (tools), resources and prompts: list, create, edit, delete."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from skillrelay_registry import schemas
from skillrelay_registry.api.common import OwnerId, Service
from skillrelay_registry.dashboard import forms, handler_form
from skillrelay_registry.dashboard.forms import Field, FormErrors
from skillrelay_registry.dashboard.pages import PREFIX, as_dict, redirect, render
from skillrelay_registry.dashboard.view_helpers import (
    Deletion,
    Editing,
    InSkillset,
    Listing,
    Rejected,
    client_errors,
    confirm_page,
    deletion_handlers,
    editing_handlers,
    form_page,
    listing_handlers,
    posted_form,
    submit_form,
)
from skillrelay_registry.errors import NotFoundError
from skillrelay_registry.kinds import ABILITY, PROMPT, RESOURCE, ContentKind
from skillrelay_registry.pagination import MAX_TAKE, ListQuery
from skillrelay_registry.service import RegistryService

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


# --- skillsets ------------------------------------------------------------------------------------


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
    values = values or forms.form_values(forms.SKILLSET_FIELDS, skillset)
    return form_page(
        request, "skillset.html", forms.SKILLSET_FIELDS, values, errors, skillset=skillset, children=children
    )


# --- abilities, resources, prompts ----------------------------------------------------------------


@dataclass(frozen=True)
class Children(InSkillset):
    """Where a page of abilities, resources or prompts is: the owner, the skillset, the kind."""

    kind: ChildKind

    @property
    def base(self) -> str:
        return f"{PREFIX}/skillsets/{self.skillset_id}/{self.kind.slug}"

    async def get(self, item_id: str) -> dict[str, Any]:
        return as_dict(
            await self.service.get_content(self.kind.content, self.owner_id, self.skillset_id, item_id)
        )


async def _provide_children(
    service: Service, owner_id: OwnerId, skillset_id: FromPath[str], kind_slug: FromPath[str]
) -> Children:
    return Children(service, owner_id, skillset_id, _kind(kind_slug))


At = NamedDependency[Children]
CHILDREN = {"at": Provide(_provide_children)}
CHILD = "/skillsets/{skillset_id:str}/{kind_slug:str}"
ITEM = CHILD + "/{item_id:str}"


async def _child_form_page(
    request: Request[Any, Any, Any],
    at: Children,
    *,
    item: dict[str, Any] | None,
    values: dict[str, str],
    errors: FormErrors | None = None,
) -> Response[str]:
    return form_page(
        request,
        "item_form.html",
        at.kind.fields,
        values,
        errors,
        skillset=await at.skillset(),
        kind=at.kind,
        item=item,
        action=f"{at.base}/{item['id']}" if item else at.base,
        handler_kinds=handler_form.KINDS,
        http_methods=handler_form.HTTP_METHODS,
    )


def _handler_values(kind: ChildKind, handler: Any) -> dict[str, str]:
    """An ability's handler also as the inputs of its kind's form."""
    return handler_form.handler_values(handler) if kind.slug == "abilities" else {}


@get(CHILD + "/new", dependencies=CHILDREN)
async def new_child(request: Request[Any, Any, Any], at: At) -> Response[str]:
    values = dict(at.kind.example)
    if "handler" in values:
        values |= _handler_values(at.kind, json.loads(values["handler"]))
    return await _child_form_page(request, at, item=None, values=values)


def _with_handler(form: dict[str, Any]) -> dict[str, Any]:
    """An ability's form with its handler inputs read into the ``handler`` JSON."""
    try:
        return handler_form.with_handler(form)
    except handler_form.HandlerFormError as exc:
        raise FormErrors(fields={"handler": str(exc)}) from None


async def _save_child(request: Request[Any, Any, Any], at: Children, item_id: str | None) -> Response[str]:
    posted = await posted_form(request)
    item = None if item_id is None else await at.get(item_id)
    content, service, owner_id, skillset_id = at.kind.content, at.service, at.owner_id, at.skillset_id
    body_type, save = (
        (content.create_body, lambda data: service.create_content(content, owner_id, skillset_id, data))
        if item_id is None
        else (
            content.update_body,
            lambda data: service.update_content(content, owner_id, skillset_id, item_id, data),
        )
    )
    saved = await submit_form(
        request,
        at.kind.fields,
        body_type,
        save,
        shown=client_errors,
        form=posted,
        prepare=_with_handler if at.kind.slug == "abilities" else None,
    )
    if isinstance(saved, Rejected):
        handler_inputs = {name: str(posted[name]) for name in handler_form.FIELDS if name in posted}
        return await _child_form_page(
            request, at, item=item, values=saved.values | handler_inputs, errors=saved.errors
        )
    return redirect(
        request, f"{PREFIX}/skillsets/{skillset_id}#{at.kind.slug}", "created" if item_id is None else "saved"
    )


@post(CHILD, dependencies=CHILDREN)
async def create_child(request: Request[Any, Any, Any], at: At) -> Response[str]:
    return await _save_child(request, at, None)


@get(ITEM, dependencies=CHILDREN)
async def edit_child(request: Request[Any, Any, Any], at: At, item_id: FromPath[str]) -> Response[str]:
    item = await at.get(item_id)
    values = forms.form_values(at.kind.fields, item) | _handler_values(at.kind, item.get("handler"))
    return await _child_form_page(request, at, item=item, values=values)


@post(ITEM, dependencies=CHILDREN)
async def update_child(request: Request[Any, Any, Any], at: At, item_id: FromPath[str]) -> Response[str]:
    return await _save_child(request, at, item_id)


@get(ITEM + "/delete", dependencies=CHILDREN)
async def confirm_delete_child(
    request: Request[Any, Any, Any], at: At, item_id: FromPath[str]
) -> Response[str]:
    item = await at.get(item_id)
    return confirm_page(
        request,
        f"{at.base}/{item_id}/delete",
        f"{at.base}/{item_id}",
        title=f"Delete the {at.kind.singular} “{item['name']}”?",
        message="Clients with an open session are told at once that the list changed.",
        label=f"Delete {at.kind.singular}",
    )


@post(ITEM + "/delete", dependencies=CHILDREN)
async def delete_child(request: Request[Any, Any, Any], at: At, item_id: FromPath[str]) -> Response[str]:
    await at.service.delete_content(at.kind.content, at.owner_id, at.skillset_id, item_id)
    return redirect(request, f"{PREFIX}/skillsets/{at.skillset_id}#{at.kind.slug}", "deleted")


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
    *listing_handlers(
        Listing(
            "skillsets",
            RegistryService.list_skillsets,
            forms.SKILLSET_FIELDS,
            schemas.SkillsetCreate,
            RegistryService.create_skillset,
            lambda created: f"{PREFIX}/skillsets/{created.id}",
            name="dashboard:skillsets",
        )
    ),
    *editing_handlers(
        Editing(
            "skillsets",
            _skillset_page,
            forms.SKILLSET_FIELDS,
            schemas.SkillsetUpdate,
            RegistryService.update_skillset,
        )
    ),
    *deletion_handlers(
        Deletion(
            "skillsets",
            "the skillset",
            "Its abilities, resources and prompts are deleted with it. This cannot be undone.",
            "Delete skillset",
            RegistryService.get_skillset,
            RegistryService.delete_skillset,
        )
    ),
    new_child,
    create_child,
    edit_child,
    update_child,
    confirm_delete_child,
    delete_child,
    validate_field,
]
