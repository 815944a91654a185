"""Tasks, kept where every edge replica reads and writes them: the JetStream KV bucket ``MCP_TASKS``.

One entry per task (key: the task id, an unguessable handle). The replica that created a task follows
its worker call and writes what happens (its *driver*); any replica answers ``tasks/get``, delivers a
``tasks/update``'s answers straight to the worker and records a ``tasks/cancel``. Every change is an
``update`` at the revision read (retried on a race), and a terminal status is never left: of a
cancellation and a result arriving together, whichever is written first stays.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any, Literal

import msgspec
import nats.js.errors

from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import MCP_TASKS_BUCKET, MCP_TASKS_TTL_SECONDS
from skillrelay_edge.calls.kv_records import RecordBucket

TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
# What a client is told: a task is readable this long after it was created (the bucket keeps an entry
# that long after its last change, so never less).
TASK_TTL_MS = MCP_TASKS_TTL_SECONDS * 1000
POLL_INTERVAL_MS = 500
_UPDATE_ATTEMPTS = 8


class TaskRecord(msgspec.Struct, kw_only=True):
    task_id: str
    # Who may see it: the integration and the principal (static-token version or OAuth subject).
    integration_id: str
    principal: str
    owner_id: str
    # The worker call the task follows (questions are answered on its worker's inbox).
    call_id: str
    # The replica following the call, and when it last showed it still does (see ``stale``).
    driver: str
    driver_seen: float
    status: TaskStatus = "working"
    status_message: str | None = None
    created_at: float
    updated_at: float
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    # Outstanding questions by key (``inputRequests``) and the worker inbox each is answered on.
    input_requests: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    input_replies: dict[str, str] = msgspec.field(default_factory=dict)
    # Keys asked over the task's life: a key is never asked twice (an answer to one is ignored).
    asked: list[str] = msgspec.field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def new_task_id() -> str:
    """An unguessable handle (the spec lets a server treat it as a bearer of the task's state)."""
    return "task_" + secrets.token_urlsafe(24)


class TaskStore:
    def __init__(self, bus: Bus, clock: Callable[[], float] = time.time) -> None:
        self._bucket = RecordBucket(bus, MCP_TASKS_BUCKET, MCP_TASKS_TTL_SECONDS, TaskRecord)
        self.clock = clock

    async def start(self) -> None:
        await self._bucket.ensure()

    async def stop(self) -> None:
        return None

    async def create(self, record: TaskRecord) -> None:
        """Written (acknowledged by JetStream) before the client hears of the task: a ``tasks/get``
        on any replica finds it at once."""
        await (await self._bucket.kv()).create(record.task_id, self._bucket.encode(record))

    async def get(self, task_id: str) -> tuple[TaskRecord, int] | None:
        """The task and its revision; None when there is none (never created, expired, unreadable)."""
        if not _valid_key(task_id):
            return None
        return await self._bucket.get(task_id)

    async def change(self, task_id: str, mutate: Callable[[TaskRecord], bool]) -> TaskRecord | None:
        """Apply ``mutate`` (returns False when there is nothing to change) at the revision read,
        again on a race. The record as stored afterwards; None when the task does not exist."""
        kv = await self._bucket.kv()
        for attempt in range(_UPDATE_ATTEMPTS):
            found = await self.get(task_id)
            if found is None:
                return None
            record, revision = found
            if not mutate(record):
                return record
            record.updated_at = self.clock()
            try:
                await kv.update(task_id, self._bucket.encode(record), last=revision)
                return record
            except nats.js.errors.KeyWrongLastSequenceError:
                await asyncio.sleep(0.005 * (attempt + 1))
        raise RuntimeError(f"task {task_id} kept changing under this update")


def _valid_key(task_id: str) -> bool:
    return 0 < len(task_id) <= 128 and all(c.isalnum() or c in "-_" for c in task_id) and task_id.isascii()
