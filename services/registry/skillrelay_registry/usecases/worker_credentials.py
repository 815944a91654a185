"""Worker credentials: the owner-facing side; the auth service keeps them (only their hashes) and
lets their workers onto the bus. Another owner's credential answers 404 like a missing one."""

from __future__ import annotations

from skillrelay_common.schemas.auth import (
    CreateWorkerCredential,
    DeleteWorkerCredential,
    GetWorkerCredential,
    ListWorkerCredentials,
    RotateWorkerCredential,
    WorkerCredentialInfo,
    WorkerCredentialIssued,
    WorkerCredentialList,
)
from skillrelay_common.schemas.base import Conflict, Invalid, NotFound, Ok
from skillrelay_common.subjects import (
    AUTH_WORKER_CREDENTIAL_CREATE,
    AUTH_WORKER_CREDENTIAL_DELETE,
    AUTH_WORKER_CREDENTIAL_GET,
    AUTH_WORKER_CREDENTIAL_LIST,
    AUTH_WORKER_CREDENTIAL_ROTATE,
)
from skillrelay_registry import schemas
from skillrelay_registry.errors import ConflictError, InvalidInput, NotFoundError, ServiceUnavailable
from skillrelay_registry.usecases.base import UseCaseBase, reply_reason
from skillrelay_worker.credential import is_subject_token

# Rotation and deletion answer once the credential's workers are disconnected (a few NATS round trips).
_CHANGE_TIMEOUT = 15.0


def _out(info: WorkerCredentialInfo) -> schemas.WorkerCredentialOut:
    return schemas.WorkerCredentialOut(
        id=info.id, name=info.name, created_at=info.created_at, rotated_at=info.rotated_at
    )


def _unavailable(action: str, reply: object) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"the auth service could not {action} the worker credential: {reply_reason(reply)}"
    )


class WorkerCredentialUseCases(UseCaseBase):
    async def create_worker_credential(
        self, owner_id: str, data: schemas.WorkerCredentialCreate
    ) -> schemas.WorkerCredentialIssued:
        reply = await self._bus.request(
            AUTH_WORKER_CREDENTIAL_CREATE, CreateWorkerCredential(owner_id=owner_id, name=data.name)
        )
        if isinstance(reply, Invalid):
            raise InvalidInput(reply.message)
        if isinstance(reply, Conflict):
            raise ConflictError(reply.message)
        if not isinstance(reply, WorkerCredentialIssued):
            raise _unavailable("create", reply)
        return schemas.WorkerCredentialIssued(id=reply.info.id, credential=reply.credential)

    async def list_worker_credentials(self, owner_id: str) -> schemas.WorkerCredentialPage:
        reply = await self._bus.request(AUTH_WORKER_CREDENTIAL_LIST, ListWorkerCredentials(owner_id=owner_id))
        if not isinstance(reply, WorkerCredentialList):
            raise _unavailable("list", reply)
        return schemas.WorkerCredentialPage(items=[_out(info) for info in reply.items])

    async def get_worker_credential(self, owner_id: str, credential_id: str) -> schemas.WorkerCredentialOut:
        self._check_id(credential_id)
        reply = await self._bus.request(
            AUTH_WORKER_CREDENTIAL_GET, GetWorkerCredential(owner_id=owner_id, credential_id=credential_id)
        )
        if isinstance(reply, NotFound):
            raise NotFoundError("worker credential not found")
        if not isinstance(reply, WorkerCredentialInfo):
            raise _unavailable("fetch", reply)
        return _out(reply)

    async def rotate_worker_credential(
        self, owner_id: str, credential_id: str
    ) -> schemas.WorkerCredentialIssued:
        """Answers once the workers connected with the old secret are disconnected."""
        self._check_id(credential_id)
        reply = await self._bus.request(
            AUTH_WORKER_CREDENTIAL_ROTATE,
            RotateWorkerCredential(owner_id=owner_id, credential_id=credential_id),
            timeout=_CHANGE_TIMEOUT,
        )
        if isinstance(reply, NotFound):
            raise NotFoundError("worker credential not found")
        if not isinstance(reply, WorkerCredentialIssued):
            raise _unavailable("rotate", reply)
        return schemas.WorkerCredentialIssued(id=reply.info.id, credential=reply.credential)

    async def delete_worker_credential(self, owner_id: str, credential_id: str) -> schemas.Created:
        """Answers once the workers connected with it are disconnected."""
        self._check_id(credential_id)
        reply = await self._bus.request(
            AUTH_WORKER_CREDENTIAL_DELETE,
            DeleteWorkerCredential(owner_id=owner_id, credential_id=credential_id),
            timeout=_CHANGE_TIMEOUT,
        )
        if isinstance(reply, NotFound):
            raise NotFoundError("worker credential not found")
        if not isinstance(reply, Ok):
            raise _unavailable("delete", reply)
        return schemas.Created(id=credential_id)

    @staticmethod
    def _check_id(credential_id: str) -> None:
        if not is_subject_token(credential_id):
            raise NotFoundError("worker credential not found")
