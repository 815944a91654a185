"""The Tasks extension's result shapes: ``CreateTaskResult`` (``resultType: "task"``) and the
``DetailedTask`` of ``tasks/get`` (the result, error or outstanding questions inlined)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from skillrelay_edge.tasks.store import POLL_INTERVAL_MS, TASK_TTL_MS, TaskRecord

EXTENSION = "io.modelcontextprotocol/tasks"
# The capability a client lacks when it asks for tasks without declaring the extension (-32021).
REQUIRED_CAPABILITIES: dict[str, Any] = {"requiredCapabilities": {"extensions": {EXTENSION: {}}}}


def declares_tasks(client_capabilities: dict[str, Any]) -> bool:
    extensions = client_capabilities.get("extensions")
    return isinstance(extensions, dict) and isinstance(extensions.get(EXTENSION), dict)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def task_fields(record: TaskRecord) -> dict[str, Any]:
    """The ``Task`` every shape carries."""
    fields: dict[str, Any] = {
        "taskId": record.task_id,
        "status": record.status,
        "createdAt": _iso(record.created_at),
        "lastUpdatedAt": _iso(record.updated_at),
        "ttlMs": TASK_TTL_MS,
        "pollIntervalMs": POLL_INTERVAL_MS,
    }
    if record.status_message:
        fields["statusMessage"] = record.status_message
    return fields


def created(record: TaskRecord) -> dict[str, Any]:
    """``CreateTaskResult``: flat ``Result & Task``."""
    return {"resultType": "task", **task_fields(record)}


def detailed(record: TaskRecord) -> dict[str, Any]:
    """``tasks/get``: the task with what its status carries."""
    answer = {"resultType": "complete", **task_fields(record)}
    if record.status == "input_required":
        answer["inputRequests"] = record.input_requests
    elif record.status == "completed":
        answer["result"] = record.result or {}
    elif record.status == "failed":
        answer["error"] = record.error or {"code": -32603, "message": "Internal error"}
    return answer
