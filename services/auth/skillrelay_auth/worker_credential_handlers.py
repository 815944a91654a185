"""NATS entry points for worker credentials (asked by the registry's REST API): decode, call, encode."""

from __future__ import annotations

import structlog

from skillrelay_auth.worker_credentials import (
    InvalidName,
    StoredCredential,
    TooManyCredentials,
    WorkerCredentials,
)
from skillrelay_common.broker import Answers
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.auth import (
    CreateWorkerCredential,
    DeleteWorkerCredential,
    GetWorkerCredential,
    ListWorkerCredentials,
    RotateWorkerCredential,
    WorkerCredentialChanged,
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
    WORKER_CREDENTIAL_CREATED,
    WORKER_CREDENTIAL_DELETED,
    WORKER_CREDENTIAL_ROTATED,
)
from skillrelay_worker.credential import is_subject_token

_log = structlog.get_logger("skillrelay.auth.worker_credentials")
_EVENTS = {
    "created": WORKER_CREDENTIAL_CREATED,
    "rotated": WORKER_CREDENTIAL_ROTATED,
    "deleted": WORKER_CREDENTIAL_DELETED,
}


def credential_info(stored: StoredCredential) -> WorkerCredentialInfo:
    return WorkerCredentialInfo(
        id=stored.id,
        owner_id=stored.owner_id,
        name=stored.name,
        created_at=stored.created_at.isoformat(),
        rotated_at=stored.rotated_at.isoformat() if stored.rotated_at else None,
    )


class BusCredentialEvents:
    """Events and a log line for each change (never the secret)."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def changed(self, verb: str, stored: StoredCredential, disconnected: int) -> None:
        _log.info(
            f"worker_credential.{verb}",
            credential_id=stored.id,
            owner_id=stored.owner_id,
            disconnected=disconnected,
        )
        await self._bus.publish_event(
            _EVENTS[verb],
            WorkerCredentialChanged(
                id=stored.id, owner_id=stored.owner_id, name=stored.name, disconnected=disconnected
            ),
        )


def register_worker_credential_handlers(answers: Answers, credentials: WorkerCredentials) -> None:
    async def create(request: CreateWorkerCredential) -> WorkerCredentialIssued | Invalid | Conflict:
        if not is_subject_token(request.owner_id):
            return Invalid(message="owner_id is malformed")
        try:
            issued = await credentials.create(request.owner_id, request.name)
        except InvalidName as exc:
            return Invalid(message=str(exc))
        except TooManyCredentials as exc:
            return Conflict(message=str(exc))
        return WorkerCredentialIssued(info=credential_info(issued.stored), credential=str(issued.credential))

    async def list_credentials(request: ListWorkerCredentials) -> WorkerCredentialList:
        return WorkerCredentialList(
            items=[credential_info(stored) for stored in await credentials.list(request.owner_id)]
        )

    async def get(request: GetWorkerCredential) -> WorkerCredentialInfo | NotFound:
        stored = await credentials.get(request.owner_id, request.credential_id)
        return credential_info(stored) if stored else NotFound(what="worker credential")

    async def rotate(request: RotateWorkerCredential) -> WorkerCredentialIssued | NotFound:
        issued = await credentials.rotate(request.owner_id, request.credential_id)
        if issued is None:
            return NotFound(what="worker credential")
        return WorkerCredentialIssued(info=credential_info(issued.stored), credential=str(issued.credential))

    async def delete(request: DeleteWorkerCredential) -> Ok | NotFound:
        deleted = await credentials.delete(request.owner_id, request.credential_id)
        return Ok() if deleted else NotFound(what="worker credential")

    answers.serve(AUTH_WORKER_CREDENTIAL_CREATE, create)
    answers.serve(AUTH_WORKER_CREDENTIAL_LIST, list_credentials)
    answers.serve(AUTH_WORKER_CREDENTIAL_GET, get)
    answers.serve(AUTH_WORKER_CREDENTIAL_ROTATE, rotate)
    answers.serve(AUTH_WORKER_CREDENTIAL_DELETE, delete)
