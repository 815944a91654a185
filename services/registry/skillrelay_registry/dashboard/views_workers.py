"""Worker credentials: create (shown once), rotate (shown once; connected workers are cut off),
delete. The credential crosses the redirect like an access token (``reveal.Revealer``), never in a URL."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post

from skillrelay_registry import schemas
from skillrelay_registry.api.common import OwnerId, Service
from skillrelay_registry.dashboard.forms import Field, FormErrors
from skillrelay_registry.dashboard.pages import as_dict, redirect, render
from skillrelay_registry.dashboard.reveal import CREDENTIAL_PAGE
from skillrelay_registry.dashboard.session import TokenReveal
from skillrelay_registry.dashboard.view_helpers import (
    Deletion,
    RevealerDep,
    Rotation,
    deletion_handlers,
    form_page,
    rotation_handlers,
    secret_page_handler,
    unavailable_errors,
)
from skillrelay_registry.errors import RegistryError
from skillrelay_registry.service import RegistryService

NAME_FIELD = Field(
    "name",
    "Name",
    required=True,
    hint="What runs with it, e.g. “billing worker on host-3”. The credential lets a worker serve your "
    "worker abilities and nothing else on the bus.",
)


async def _workers_page(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
) -> Response[str]:
    page = await service.list_worker_credentials(owner_id)
    credentials = [as_dict(item) for item in page.items]
    return form_page(request, "workers.html", [NAME_FIELD], values or {}, errors, credentials=credentials)


@get("/workers")
async def list_workers(request: Request[Any, Any, Any], service: Service, owner_id: OwnerId) -> Response[str]:
    return await _workers_page(request, service, owner_id)


@post("/workers")
async def create_worker_credential(
    request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, revealer: RevealerDep
) -> Response[str]:
    raw = (await request.form()).get("name")
    name = raw if isinstance(raw, str) else ""
    try:
        created = await service.create_worker_credential(owner_id, schemas.WorkerCredentialCreate(name=name))
    except RegistryError as exc:
        problem = FormErrors(fields={"name": exc.message}) if exc.status < 500 else unavailable_errors(exc)
        return await _workers_page(request, service, owner_id, values={"name": name}, errors=problem)
    return redirect(
        request,
        revealer.hand_over(request, CREDENTIAL_PAGE, owner_id, created.id, created.credential, rotated=False),
    )


def _credential_page(
    request: Request[Any, Any, Any], record: dict[str, Any], reveal: TokenReveal | None
) -> Response[str]:
    """The credential just created or rotated, once; then the page says it cannot be shown again."""
    return render(
        request,
        "worker_credential.html",
        record=record,
        credential=reveal.token if reveal else None,
        rotated=reveal.rotated if reveal else False,
    )


async def _rotate_credential(service: RegistryService, owner_id: str, credential_id: str) -> str:
    return (await service.rotate_worker_credential(owner_id, credential_id)).credential


WORKER_HANDLERS = [
    list_workers,
    create_worker_credential,
    secret_page_handler(CREDENTIAL_PAGE, RegistryService.get_worker_credential, _credential_page),
    *rotation_handlers(
        Rotation(
            CREDENTIAL_PAGE,
            "the worker credential",
            "Workers connected with the current credential are disconnected at once and cannot "
            "reconnect with it. The new credential is shown once.",
            "Rotate credential",
            RegistryService.get_worker_credential,
            _rotate_credential,
            cancel_to_list=True,
        )
    ),
    *deletion_handlers(
        Deletion(
            "workers",
            "the worker credential",
            "Workers connected with it are disconnected at once and cannot reconnect.",
            "Delete credential",
            RegistryService.get_worker_credential,
            RegistryService.delete_worker_credential,
            cancel_to_list=True,
        )
    ),
]
