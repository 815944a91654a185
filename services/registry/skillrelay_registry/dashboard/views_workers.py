"""Worker credentials: create (shown once), rotate (shown once; connected workers are cut off),
delete. The credential crosses the redirect like an access token (``RevealCodec``), never in a URL."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from skillrelay_registry import schemas
from skillrelay_registry.api.common import OwnerId, Service
from skillrelay_registry.dashboard.forms import Field, FormErrors
from skillrelay_registry.dashboard.pages import PREFIX, as_dict, redirect, render
from skillrelay_registry.dashboard.security import request_session
from skillrelay_registry.dashboard.session import REVEAL_COOKIE, REVEAL_SECONDS, RevealCodec
from skillrelay_registry.dashboard.view_helpers import (
    Deletion,
    confirm_page,
    deletion_handlers,
    form_page,
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


class CredentialRevealer:
    """Carries a new worker credential to the one page that shows it, once (as ``TokenRevealer``)."""

    def __init__(self, codec: RevealCodec) -> None:
        self._codec = codec

    @staticmethod
    def path(credential_id: str) -> str:
        return f"{PREFIX}/workers/{credential_id}/credential"

    def hand_over(
        self,
        request: Request[Any, Any, Any],
        owner_id: str,
        credential_id: str,
        credential: str,
        *,
        rotated: bool,
    ) -> str:
        path = self.path(credential_id)
        value = self._codec.encode(owner_id, credential_id, credential, rotated=rotated)
        request_session(request).add_cookie(REVEAL_COOKIE, value, path=path, max_age=REVEAL_SECONDS)
        return path

    def take(
        self, request: Request[Any, Any, Any], owner_id: str, credential_id: str
    ) -> tuple[str, bool] | None:
        path = self.path(credential_id)
        request_session(request).add_cookie(REVEAL_COOKIE, "", path=path, max_age=0)
        reveal = self._codec.decode(request.cookies.get(REVEAL_COOKIE), owner_id, credential_id)
        return None if reveal is None else (reveal.token, reveal.rotated)


Revealer = NamedDependency[CredentialRevealer]


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
    request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, credential_revealer: Revealer
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
        credential_revealer.hand_over(request, owner_id, created.id, created.credential, rotated=False),
    )


@get("/workers/{credential_id:str}/credential")
async def show_credential(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    credential_revealer: Revealer,
    credential_id: FromPath[str],
) -> Response[str]:
    """The credential just created or rotated, once: a reload finds the cookie gone."""
    record = as_dict(await service.get_worker_credential(owner_id, credential_id))
    reveal = credential_revealer.take(request, owner_id, credential_id)
    return render(
        request,
        "worker_credential.html",
        record=record,
        credential=reveal[0] if reveal else None,
        rotated=reveal[1] if reveal else False,
    )


@get("/workers/{credential_id:str}/rotate")
async def confirm_rotate_credential(
    request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, credential_id: FromPath[str]
) -> Response[str]:
    record = await service.get_worker_credential(owner_id, credential_id)
    return confirm_page(
        request,
        f"{PREFIX}/workers/{credential_id}/rotate",
        f"{PREFIX}/workers",
        title=f"Rotate the worker credential “{record.name}”?",
        message="Workers connected with the current credential are disconnected at once and cannot "
        "reconnect with it. The new credential is shown once.",
        label="Rotate credential",
    )


@post("/workers/{credential_id:str}/rotate")
async def rotate_credential(
    request: Request[Any, Any, Any],
    service: Service,
    owner_id: OwnerId,
    credential_revealer: Revealer,
    credential_id: FromPath[str],
) -> Response[str]:
    rotated = await service.rotate_worker_credential(owner_id, credential_id)
    return redirect(
        request,
        credential_revealer.hand_over(request, owner_id, credential_id, rotated.credential, rotated=True),
    )


WORKER_HANDLERS = [
    list_workers,
    create_worker_credential,
    show_credential,
    confirm_rotate_credential,
    rotate_credential,
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
