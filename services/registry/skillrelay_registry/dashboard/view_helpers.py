"""What the dashboard's views share, one place per pattern: a posted form read into the REST API's
request body (and its problems back into the form), a page with a form, the confirmation page, where a
page is (the owner and the record or skillset the URL names, one dependency), a list page with its
create form, and, for a record reached by one id, its page with the edit form, the confirm-then-delete
and confirm-then-rotate routes, and the page that shows a new secret once.

Which ``RegistryError`` a form shows as its own problem is each view's choice (an ``ErrorPolicy``);
the others propagate to the error page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from skillrelay_registry.api.common import OwnerId, Service
from skillrelay_registry.dashboard import forms
from skillrelay_registry.dashboard.forms import Field, FormErrors
from skillrelay_registry.dashboard.pages import PREFIX, as_dict, page_query, redirect, render
from skillrelay_registry.dashboard.reveal import Revealer, SecretPage
from skillrelay_registry.dashboard.session import TokenReveal
from skillrelay_registry.errors import InvalidInput, RegistryError
from skillrelay_registry.pagination import ListQuery, Page
from skillrelay_registry.schemas import Created
from skillrelay_registry.service import RegistryService

BodyT = TypeVar("BodyT", bound=msgspec.Struct)
ResultT = TypeVar("ResultT")

# A RegistryError as the form's problems, or None: not the form's to show (the error page shows it).
ErrorPolicy = Callable[[RegistryError], FormErrors | None]


async def posted_form(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return dict((await request.form()).items())


def unavailable_errors(exc: RegistryError) -> FormErrors:
    """A service the registry needs did not answer: the form stays as posted, to send again."""
    return FormErrors(general=[f"Nothing was changed: {exc.message}. Try again in a moment."])


def input_errors(exc: RegistryError) -> FormErrors | None:
    """Only bad input (``InvalidInput``) is the form's problem."""
    return forms.registry_errors(exc) if isinstance(exc, InvalidInput) else None


def client_errors(exc: RegistryError) -> FormErrors | None:
    """Bad input and conflicts (400, 409) are the form's problem."""
    return forms.registry_errors(exc) if exc.status in {400, 409} else None


def every_error(exc: RegistryError) -> FormErrors | None:
    """Every error is the form's problem; an unavailable service says nothing was changed."""
    return unavailable_errors(exc) if exc.status == 503 else forms.registry_errors(exc)


@dataclass(frozen=True)
class Rejected:
    """A posted form that was not saved: the values to show again and why."""

    values: dict[str, str]
    errors: FormErrors


async def submit_form(
    request: Request[Any, Any, Any],
    fields: list[Field],
    body_type: type[BodyT],
    save: Callable[[BodyT], Awaitable[ResultT]],
    *,
    shown: ErrorPolicy = input_errors,
    form: dict[str, Any] | None = None,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    adjust: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
) -> ResultT | Rejected:
    """Reads the posted form (or ``form``) into ``body_type`` exactly as the REST API decodes a body,
    and saves it; or says why not. ``prepare`` rewrites the form first (it may raise ``FormErrors``),
    ``adjust(body, form)`` the body before it is decoded."""
    if form is None:
        form = await posted_form(request)
    try:
        if prepare is not None:
            form = prepare(form)
        body, errors = forms.read_form(fields, form)
        if adjust is not None:
            adjust(body, form)
        return await save(forms.to_body(body, body_type, errors))
    except FormErrors as exc:
        return Rejected(forms.posted_values(fields, form), exc)
    except RegistryError as exc:
        problems = shown(exc)
        if problems is None:
            raise
        return Rejected(forms.posted_values(fields, form), problems)


def form_page(
    request: Request[Any, Any, Any],
    template: str,
    fields: list[Field],
    values: dict[str, str],
    errors: FormErrors | None,
    *,
    status_code: int | None = None,
    **context: Any,
) -> Response[str]:
    """A page with a form; 422 while it shows the problems of the one just posted."""
    return render(
        request,
        template,
        status_code=status_code or (422 if errors else 200),
        fields=fields,
        values=values,
        errors=errors or FormErrors(),
        **context,
    )


def confirm_page(
    request: Request[Any, Any, Any], action: str, cancel: str, *, title: str, message: str, label: str
) -> Response[str]:
    """Asks before a change that cannot be undone; the form posts to ``action``."""
    return render(
        request,
        "confirm.html",
        title=title,
        message=message,
        action=action,
        confirm_label=label,
        cancel=cancel,
        danger=True,
    )


# --- where a page is: one dependency, ``at``, instead of the same parameters on every handler -------


@dataclass(frozen=True)
class Owned:
    """The signed-in owner and the service acting for them."""

    service: RegistryService
    owner_id: str


@dataclass(frozen=True)
class OwnedRecord(Owned):
    """A page of one record, the URL's ``{record_id}``."""

    record_id: str


@dataclass(frozen=True)
class InSkillset(Owned):
    """A page below the skillset the URL's ``{skillset_id}`` names."""

    skillset_id: str

    async def skillset(self) -> dict[str, Any]:
        return as_dict(await self.service.get_skillset(self.owner_id, self.skillset_id))


async def _owned_record(service: Service, owner_id: OwnerId, record_id: FromPath[str]) -> OwnedRecord:
    return OwnedRecord(service, owner_id, record_id)


async def _in_skillset(service: Service, owner_id: OwnerId, skillset_id: FromPath[str]) -> InSkillset:
    return InSkillset(service, owner_id, skillset_id)


# A handler takes ``at: AtRecord`` and declares ``dependencies=AT_RECORD`` (likewise for a skillset).
AtRecord = NamedDependency[OwnedRecord]
AT_RECORD = {"at": Provide(_owned_record)}
InSkillsetDep = NamedDependency[InSkillset]
IN_SKILLSET = {"at": Provide(_in_skillset)}


@dataclass(frozen=True)
class Listing(Generic[BodyT]):
    """The records under ``/<collection>``, a hundred a page (``<collection>.html``, which names them
    ``<collection>``), on a page whose form creates one."""

    collection: str  # the path segment, e.g. "connections"
    records: Callable[[RegistryService, str, ListQuery], Awaitable[Page[Any]]]
    fields: list[Field]
    body_type: type[BodyT]
    create: Callable[[RegistryService, str, BodyT], Awaitable[Created]]
    then: Callable[[Created], str]  # where the owner goes next
    shown: ErrorPolicy = input_errors
    name: str | None = None  # of the list route


def listing_handlers(listing: Listing[Any]) -> list[HTTPRouteHandler]:
    """``GET /<collection>`` (the list) and ``POST`` to it (creating, then on to ``then``)."""

    async def page(
        request: Request[Any, Any, Any], service: RegistryService, owner_id: str, rejected: Rejected | None
    ) -> Response[str]:
        records = await listing.records(service, owner_id, page_query(request))
        listed: dict[str, Any] = {listing.collection: [as_dict(item) for item in records.items]}
        return form_page(
            request,
            f"{listing.collection}.html",
            listing.fields,
            rejected.values if rejected else {},
            rejected.errors if rejected else None,
            next_cursor=records.cursor,
            **listed,
        )

    @get(f"/{listing.collection}", name=listing.name)
    async def show(request: Request[Any, Any, Any], service: Service, owner_id: OwnerId) -> Response[str]:
        return await page(request, service, owner_id, None)

    @post(f"/{listing.collection}")
    async def create(request: Request[Any, Any, Any], service: Service, owner_id: OwnerId) -> Response[str]:
        created = await submit_form(
            request,
            listing.fields,
            listing.body_type,
            lambda body: listing.create(service, owner_id, body),
            shown=listing.shown,
        )
        if isinstance(created, Rejected):
            return await page(request, service, owner_id, created)
        return redirect(request, listing.then(created), "created")

    return [show, create]


class RecordPage(Protocol):
    """Renders a record's page, its edit form showing ``values`` and ``errors`` when given."""

    def __call__(
        self,
        request: Request[Any, Any, Any],
        service: RegistryService,
        owner_id: str,
        record_id: str,
        /,
        *,
        values: dict[str, str] | None = None,
        errors: FormErrors | None = None,
    ) -> Awaitable[Response[str]]: ...


@dataclass(frozen=True)
class Editing(Generic[BodyT]):
    """A record under ``/<collection>/<id>`` whose page holds its edit form."""

    collection: str  # the path segment, e.g. "integrations"
    page: RecordPage
    fields: list[Field] | Callable[[RegistryService, str], Awaitable[list[Field]]]  # or per owner
    body_type: type[BodyT]
    update: Callable[[RegistryService, str, str, BodyT], Awaitable[object]]
    shown: ErrorPolicy = input_errors


def editing_handlers(editing: Editing[Any]) -> list[HTTPRouteHandler]:
    """``GET /<collection>/<id>`` (the page) and ``POST`` to it (saving, then back to the page)."""

    @get(f"/{editing.collection}/{{record_id:str}}", dependencies=AT_RECORD)
    async def show(request: Request[Any, Any, Any], at: AtRecord) -> Response[str]:
        return await editing.page(request, at.service, at.owner_id, at.record_id)

    @post(f"/{editing.collection}/{{record_id:str}}", dependencies=AT_RECORD)
    async def update(request: Request[Any, Any, Any], at: AtRecord) -> Response[str]:
        fields = (
            editing.fields
            if isinstance(editing.fields, list)
            else await editing.fields(at.service, at.owner_id)
        )
        saved = await submit_form(
            request,
            fields,
            editing.body_type,
            lambda body: editing.update(at.service, at.owner_id, at.record_id, body),
            shown=editing.shown,
        )
        if isinstance(saved, Rejected):
            return await editing.page(
                request, at.service, at.owner_id, at.record_id, values=saved.values, errors=saved.errors
            )
        return redirect(request, f"{PREFIX}/{editing.collection}/{at.record_id}", "saved")

    return [show, update]


class Named(Protocol):
    @property
    def name(self) -> str: ...


RecordOf = Callable[[RegistryService, str, str], Awaitable[Named]]
RevealerDep = NamedDependency[Revealer]


class Question(Protocol):
    """What a confirmation page asks about a record: “<Verb> <what> “<name>”?”."""

    @property
    def what(self) -> str: ...  # as the question names it, e.g. "the integration"
    @property
    def message(self) -> str: ...  # what the action does
    @property
    def label(self) -> str: ...  # the button
    @property
    def get(self) -> RecordOf: ...
    @property
    def cancel_to_list(self) -> bool: ...  # "Cancel" goes back to the list, not to the record's page


def _confirmation(collection: str, verb: str, question: Question) -> HTTPRouteHandler:
    """``GET /<collection>/<id>/<verb>``: asks before the POST to the same path does it."""
    listed = f"{PREFIX}/{collection}"

    @get(f"/{collection}/{{record_id:str}}/{verb}", dependencies=AT_RECORD)
    async def confirm(request: Request[Any, Any, Any], at: AtRecord) -> Response[str]:
        record = await question.get(at.service, at.owner_id, at.record_id)
        return confirm_page(
            request,
            f"{listed}/{at.record_id}/{verb}",
            listed if question.cancel_to_list else f"{listed}/{at.record_id}",
            title=f"{verb.capitalize()} {question.what} “{record.name}”?",
            message=question.message,
            label=question.label,
        )

    return confirm


@dataclass(frozen=True)
class Deletion:
    """A record under ``/<collection>/<id>`` that is deleted after a confirmation page."""

    collection: str  # the path segment, e.g. "integrations"
    what: str  # as the question names it, e.g. "the integration"
    message: str
    label: str
    get: RecordOf
    delete: Callable[[RegistryService, str, str], Awaitable[object]]
    cancel_to_list: bool = False


def deletion_handlers(deletion: Deletion) -> list[HTTPRouteHandler]:
    """``GET …/delete`` (the question) and ``POST …/delete`` (deleting, then back to the list)."""
    listed = f"{PREFIX}/{deletion.collection}"

    @post(f"/{deletion.collection}/{{record_id:str}}/delete", dependencies=AT_RECORD)
    async def delete(request: Request[Any, Any, Any], at: AtRecord) -> Response[str]:
        await deletion.delete(at.service, at.owner_id, at.record_id)
        return redirect(request, listed, "deleted")

    return [_confirmation(deletion.collection, "delete", deletion), delete]


def secret_page_handler(
    page: SecretPage,
    get_record: Callable[[RegistryService, str, str], Awaitable[msgspec.Struct]],
    show: Callable[[Request[Any, Any, Any], dict[str, Any], TokenReveal | None], Response[str]],
) -> HTTPRouteHandler:
    """``GET`` the page that shows a record's new secret once: a reload finds the cookie gone, and
    ``show`` gets ``None`` for the secret."""

    @get(f"/{page.collection}/{{record_id:str}}/{page.name}", dependencies=AT_RECORD)
    async def show_secret(
        request: Request[Any, Any, Any], at: AtRecord, revealer: RevealerDep
    ) -> Response[str]:
        record = as_dict(await get_record(at.service, at.owner_id, at.record_id))
        return show(request, record, revealer.take(request, page, at.owner_id, at.record_id))

    return show_secret


@dataclass(frozen=True)
class Rotation:
    """A record whose secret is replaced after a confirmation page, the new one shown once on its
    ``shown_on`` page (the record's collection is that page's)."""

    shown_on: SecretPage
    what: str  # as the question names it, e.g. "the access token of"
    message: str
    label: str
    get: RecordOf
    rotate: Callable[[RegistryService, str, str], Awaitable[str]]  # the new secret
    cancel_to_list: bool = False


def rotation_handlers(rotation: Rotation) -> list[HTTPRouteHandler]:
    """``GET …/rotate`` (the question) and ``POST …/rotate`` (rotating, then the new secret, once)."""
    collection = rotation.shown_on.collection

    @post(f"/{collection}/{{record_id:str}}/rotate", dependencies=AT_RECORD)
    async def rotate(request: Request[Any, Any, Any], at: AtRecord, revealer: RevealerDep) -> Response[str]:
        secret = await rotation.rotate(at.service, at.owner_id, at.record_id)
        path = revealer.hand_over(request, rotation.shown_on, at.owner_id, at.record_id, secret, rotated=True)
        return redirect(request, path)

    return [_confirmation(collection, "rotate", rotation), rotate]
