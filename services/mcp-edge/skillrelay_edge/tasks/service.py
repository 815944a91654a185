"""Tasks as the edge serves them: ``tasks/get``, ``tasks/update`` and ``tasks/cancel`` on any replica,
and ``TaskHost``, through which the replica that created a task (its driver) writes what its worker
call does. Each request's caller must be the task's: same integration, same principal; anyone else
is told the task does not exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from skillrelay_edge.calls.context import INTERNAL_ERROR, INVALID_PARAMS
from skillrelay_edge.modern.inputs import read_input_responses
from skillrelay_edge.protocol.scope import RequestScope
from skillrelay_edge.tasks import wire
from skillrelay_edge.tasks.store import TaskRecord, TaskStore, new_task_id
from skillrelay_edge.transport.jsonrpc import RpcError

METHODS = frozenset({"tasks/get", "tasks/update", "tasks/cancel"})
# A driver shows it still follows its task at least this often; a working task whose driver has not
# for STALE_SECONDS lost it (its replica died): it is reported failed.
DRIVER_REFRESH_SECONDS = 10.0
STALE_SECONDS = 45.0
DRIVER_LOST = "the edge replica following this task stopped; call the tool again"


class WorkerControl(Protocol):
    """What a replica does to a task's worker call without following it."""

    def answer(self, reply_subject: str, call_id: str, result: dict[str, Any]) -> None: ...
    def cancel(self, owner_id: str, call_id: str, reason: str) -> None: ...


class TaskCreated(Exception):
    """The handler went on as a task: answer the request with ``CreateTaskResult``."""

    def __init__(self, record: TaskRecord) -> None:
        super().__init__("task created")
        self.record = record


def _not_found() -> RpcError:
    return RpcError(INVALID_PARAMS, "Failed to retrieve task: Task not found")


def _task_id(params: dict[str, Any]) -> str:
    task_id = params.get("taskId")
    if not isinstance(task_id, str) or not task_id:
        raise RpcError(INVALID_PARAMS, "Invalid params: taskId must be a non-empty string")
    return task_id


class TaskService:
    def __init__(self, store: TaskStore, control: WorkerControl, driver_key: str) -> None:
        self.store = store
        self.control = control
        self.driver_key = driver_key

    def host(self, scope: RequestScope) -> TaskHost:
        integration = scope.catalog.integration
        return TaskHost(self, integration.id, scope.principal.id, integration.owner_id)

    async def answer(self, scope: RequestScope, method: str, params: dict[str, Any]) -> dict[str, Any]:
        task_id = _task_id(params)
        if method == "tasks/get":
            return wire.detailed(await self._get(scope, task_id))
        if method == "tasks/update":
            responses = read_input_responses(params)
            await self._get(scope, task_id)  # the caller's own task, or "not found"
            await self._deliver(task_id, responses)
            return {"resultType": "complete"}
        await self._cancel(scope, task_id)
        return {"resultType": "complete"}

    async def _get(self, scope: RequestScope, task_id: str) -> TaskRecord:
        found = await self.store.get(task_id)
        if found is None:
            raise _not_found()
        record = found[0]
        if record.integration_id != scope.catalog.integration.id or record.principal != scope.principal.id:
            raise _not_found()  # never tell another caller that a task exists
        if not record.terminal and self.store.clock() - record.driver_seen > STALE_SECONDS:
            changed = await self.store.change(task_id, _fail_with(INTERNAL_ERROR, DRIVER_LOST))
            return changed or record
        return record

    async def _deliver(self, task_id: str, responses: dict[str, dict[str, Any]]) -> None:
        """Hand each answer to the worker waiting for it (on its inbox: no driver involved). Keys not
        outstanding (unknown, answered already, or the task is over) are ignored, as the spec says."""
        delivered: dict[str, str] = {}

        def take(record: TaskRecord) -> bool:
            delivered.clear()
            if record.terminal:
                return False
            for key in responses:
                reply = record.input_replies.pop(key, None)
                if reply is not None:
                    record.input_requests.pop(key, None)
                    delivered[key] = reply
            if delivered and not record.input_requests and record.status == "input_required":
                record.status = "working"
            return bool(delivered)

        record = await self.store.change(task_id, take)
        if record is None:
            return
        for key, reply in delivered.items():
            self.control.answer(reply, record.call_id, responses[key])

    async def _cancel(self, scope: RequestScope, task_id: str) -> None:
        record = await self._get(scope, task_id)
        if record.terminal:
            return  # acknowledged all the same: cancelling is a wish, not a state query

        def cancel(current: TaskRecord) -> bool:
            if current.terminal:
                return False
            current.status = "cancelled"
            current.status_message = "cancelled by the client"
            current.input_requests.clear()
            current.input_replies.clear()
            return True

        changed = await self.store.change(task_id, cancel)
        if changed is not None and changed.status == "cancelled":
            self.control.cancel(record.owner_id, record.call_id, "the client cancelled the task")


def _fail_with(code: int, message: str) -> Any:
    def fail(record: TaskRecord) -> bool:
        if record.terminal:
            return False
        record.status = "failed"
        record.status_message = message
        record.error = {"code": code, "message": message}
        record.input_requests.clear()
        record.input_replies.clear()
        return True

    return fail


@dataclass(frozen=True, slots=True)
class TaskHost:
    """One request's way to become a task, then its driver's way to write the task."""

    service: TaskService
    integration_id: str
    principal: str
    owner_id: str

    async def create(self, call_id: str, status_message: str | None) -> TaskRecord:
        now = self.service.store.clock()
        record = TaskRecord(
            task_id=new_task_id(),
            integration_id=self.integration_id,
            principal=self.principal,
            owner_id=self.owner_id,
            call_id=call_id,
            driver=self.service.driver_key,
            driver_seen=now,
            status_message=status_message,
            created_at=now,
            updated_at=now,
        )
        await self.service.store.create(record)
        return record

    async def ask(self, task_id: str, questions: dict[str, tuple[dict[str, Any], str]]) -> bool:
        """The handler waits for answers: ``input_required`` with these questions (key → request and
        the worker inbox it is answered on). False when the task is over (cancelled meanwhile)."""

        def ask(record: TaskRecord) -> bool:
            if record.terminal:
                return False
            for key, (request, reply) in questions.items():
                if key in record.asked:
                    continue  # a key is asked once in a task's life
                record.asked.append(key)
                record.input_requests[key] = request
                record.input_replies[key] = reply
            record.status = "input_required" if record.input_requests else record.status
            record.driver_seen = self.service.store.clock()
            return True

        record = await self.service.store.change(task_id, ask)
        return record is not None and not record.terminal

    async def progress(self, task_id: str, message: str) -> bool:
        def note(record: TaskRecord) -> bool:
            if record.terminal or record.status_message == message:
                return False
            record.status_message = message
            return True

        record = await self.service.store.change(task_id, note)
        return record is not None and not record.terminal

    async def seen(self, task_id: str) -> bool:
        """The driver still follows the task; False when there is nothing left to follow."""

        def touch(record: TaskRecord) -> bool:
            if record.terminal:
                return False
            record.driver_seen = self.service.store.clock()
            return True

        record = await self.service.store.change(task_id, touch)
        return record is not None and not record.terminal

    async def complete(self, task_id: str, result: dict[str, Any]) -> None:
        def done(record: TaskRecord) -> bool:
            if record.terminal:
                return False
            record.status = "completed"
            record.result = {key: value for key, value in result.items() if key != "resultType"}
            record.input_requests.clear()
            record.input_replies.clear()
            return True

        await self.service.store.change(task_id, done)

    async def fail(self, task_id: str, code: int, message: str) -> None:
        await self.service.store.change(task_id, _fail_with(code, message))
