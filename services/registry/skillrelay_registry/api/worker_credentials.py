"""``/api/v1/worker/credential/*``: the credentials an owner's worker processes connect to NATS with."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from skillrelay_registry import schemas
from skillrelay_registry.api.common import OwnerId, Service


class WorkerCredentialController(Controller):
    path = "/worker/credential"
    tags = ["worker credentials"]

    @post(
        "/create",
        status_code=200,
        summary="Create a worker credential; the only answer with it (besides rotate)",
        description="A worker given this credential (Worker(credential=…) or SKILLRELAY_WORKER_CREDENTIAL) "
        "may serve the owner's worker subjects on NATS and nothing else.",
    )
    async def create(
        self, service: Service, owner_id: OwnerId, data: JSONBody[schemas.WorkerCredentialCreate]
    ) -> schemas.WorkerCredentialIssued:
        return await service.create_worker_credential(owner_id, data)

    @get("/list", summary="Every worker credential of the owner (at most 100), without secrets")
    async def list(self, service: Service, owner_id: OwnerId) -> schemas.WorkerCredentialPage:
        return await service.list_worker_credentials(owner_id)

    @get("/{credential_id:str}/fetch")
    async def fetch(
        self, service: Service, owner_id: OwnerId, credential_id: FromPath[str]
    ) -> schemas.WorkerCredentialOut:
        return await service.get_worker_credential(owner_id, credential_id)

    @post(
        "/{credential_id:str}/rotate",
        status_code=200,
        summary="A new secret; answers once workers connected with the old one are disconnected",
    )
    async def rotate(
        self,
        service: Service,
        owner_id: OwnerId,
        credential_id: FromPath[str],
        data: JSONBody[schemas.EmptyBody | None] = None,
    ) -> schemas.WorkerCredentialIssued:
        return await service.rotate_worker_credential(owner_id, credential_id)

    @post(
        "/{credential_id:str}/delete",
        status_code=200,
        summary="Delete; answers once the workers connected with it are disconnected",
    )
    async def delete(
        self,
        service: Service,
        owner_id: OwnerId,
        credential_id: FromPath[str],
        data: JSONBody[schemas.EmptyBody | None] = None,
    ) -> schemas.Created:
        return await service.delete_worker_credential(owner_id, credential_id)
