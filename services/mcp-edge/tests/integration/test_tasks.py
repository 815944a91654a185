"""Tasks (the 2026-07-28 Tasks extension) in the real JetStream KV bucket, seen from two replicas: one
creates and drives a task, the other answers ``tasks/get``, ``tasks/update`` and ``tasks/cancel``.
End to end with a real worker: the conformance suite's task scenarios (tests/conformance)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest

from skillrelay_common.messaging import Bus
from skillrelay_edge.protocol.scope import RequestScope
from skillrelay_edge.tasks.service import STALE_SECONDS, TaskService
from skillrelay_edge.tasks.store import TaskStore
from skillrelay_edge.transport.jsonrpc import RpcError


@dataclass
class RecordedControl:
    """What the replicas asked of the worker (the worker protocol itself is tested elsewhere)."""

    answers: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    cancels: list[tuple[str, str]] = field(default_factory=list)

    def answer(self, reply_subject: str, call_id: str, result: dict[str, Any]) -> None:
        self.answers.append((reply_subject, call_id, result))

    def cancel(self, owner_id: str, call_id: str, reason: str) -> None:
        self.cancels.append((owner_id, call_id))


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def scope(principal: str = "static:v1", integration: str = "mcpserver_tasks") -> RequestScope:
    catalog = SimpleNamespace(integration=SimpleNamespace(id=integration, owner_id="user_owner"))
    return cast("RequestScope", SimpleNamespace(catalog=catalog, principal=SimpleNamespace(id=principal)))


@dataclass
class Replicas:
    driver: TaskService
    other: TaskService
    control: RecordedControl
    clock: Clock


@pytest.fixture
async def replicas(nats_url: str) -> AsyncIterator[Replicas]:
    buses = [await Bus.connect(nats_url, "edge") for _ in range(2)]
    clock, control = Clock(), RecordedControl()
    stores = [TaskStore(bus, clock) for bus in buses]
    for store in stores:
        await store.start()
    yield Replicas(
        TaskService(stores[0], control, "edge-a"), TaskService(stores[1], control, "edge-b"), control, clock
    )
    for bus in buses:
        await bus.close()


async def test_a_created_task_is_read_at_once_on_another_replica(replicas: Replicas) -> None:
    host = replicas.driver.host(scope())
    record = await host.create("call-1", "starting")
    got = await replicas.other.answer(scope(), "tasks/get", {"taskId": record.task_id})
    assert got["resultType"] == "complete"
    assert got["taskId"] == record.task_id and got["status"] == "working"
    assert got["statusMessage"] == "starting"
    assert isinstance(got["ttlMs"], int) and got["ttlMs"] > 0 and isinstance(got["pollIntervalMs"], int)
    assert got["createdAt"].endswith("Z") and "result" not in got and "requestState" not in got


@pytest.mark.parametrize(
    ("caller", "task_id"),
    [
        (scope(principal="static:v2"), None),  # the token was rotated: another principal
        (scope(integration="mcpserver_other"), None),
        (scope(), "task_does-not-exist"),
        (scope(), "no/such key"),
    ],
)
async def test_anyone_but_the_tasks_caller_is_told_it_does_not_exist(
    replicas: Replicas, caller: RequestScope, task_id: str | None
) -> None:
    record = await replicas.driver.host(scope()).create("call-1", None)
    for method in ("tasks/get", "tasks/cancel"):
        with pytest.raises(RpcError) as raised:
            await replicas.other.answer(caller, method, {"taskId": task_id or record.task_id})
        assert raised.value.code == -32602
    assert replicas.control.cancels == []


async def test_answers_reach_the_worker_once_and_only_for_outstanding_questions(replicas: Replicas) -> None:
    host = replicas.driver.host(scope())
    record = await host.create("call-7", None)
    elicit = {"method": "elicitation/create", "params": {"message": "Name?"}}
    confirm = {"method": "elicitation/create", "params": {"message": "Sure?"}}
    assert await host.ask(record.task_id, {"elicit-2": (elicit, "inbox.2"), "elicit-3": (confirm, "inbox.3")})
    got = await replicas.other.answer(scope(), "tasks/get", {"taskId": record.task_id})
    assert got["status"] == "input_required"
    assert got["inputRequests"] == {"elicit-2": elicit, "elicit-3": confirm}

    first = {"action": "accept", "content": {"name": "Ada"}}
    ack = await replicas.other.answer(
        scope(), "tasks/update", {"taskId": record.task_id, "inputResponses": {"elicit-2": first, "nope": {}}}
    )
    assert ack == {"resultType": "complete"}
    assert replicas.control.answers == [("inbox.2", "call-7", first)]
    got = await replicas.other.answer(scope(), "tasks/get", {"taskId": record.task_id})
    assert got["status"] == "input_required" and list(got["inputRequests"]) == ["elicit-3"]

    # Answered already: ignored. The last answer puts the task back to work.
    second = {"action": "accept", "content": {"confirm": True}}
    await replicas.other.answer(
        scope(), "tasks/update", {"taskId": record.task_id, "inputResponses": {"elicit-2": first}}
    )
    await replicas.other.answer(
        scope(), "tasks/update", {"taskId": record.task_id, "inputResponses": {"elicit-3": second}}
    )
    assert [answer[0] for answer in replicas.control.answers] == ["inbox.2", "inbox.3"]
    got = await replicas.other.answer(scope(), "tasks/get", {"taskId": record.task_id})
    assert got["status"] == "working" and "inputRequests" not in got

    # A key is asked once in a task's life.
    assert await host.ask(record.task_id, {"elicit-2": (elicit, "inbox.2b")})
    got = await replicas.other.answer(scope(), "tasks/get", {"taskId": record.task_id})
    assert got["status"] == "working"


async def test_update_with_malformed_answers_is_invalid_params(replicas: Replicas) -> None:
    record = await replicas.driver.host(scope()).create("call-1", None)
    with pytest.raises(RpcError) as raised:
        await replicas.other.answer(scope(), "tasks/update", {"taskId": record.task_id, "inputResponses": 7})
    assert raised.value.code == -32602
    with pytest.raises(RpcError):
        await replicas.other.answer(scope(), "tasks/get", {"taskId": 12})


async def test_results_and_errors_are_inlined_and_a_finished_task_stays_finished(replicas: Replicas) -> None:
    host = replicas.driver.host(scope())
    done = await host.create("call-1", None)
    await host.complete(done.task_id, {"content": [{"type": "text", "text": "ok"}], "resultType": "complete"})
    got = await replicas.other.answer(scope(), "tasks/get", {"taskId": done.task_id})
    assert got["status"] == "completed" and got["result"] == {"content": [{"type": "text", "text": "ok"}]}
    assert await replicas.other.answer(scope(), "tasks/cancel", {"taskId": done.task_id}) == {
        "resultType": "complete"
    }
    assert replicas.control.cancels == []  # cancelling a finished task only acknowledges

    failed = await host.create("call-2", None)
    await host.fail(failed.task_id, -32603, "backend refused")
    got = await replicas.other.answer(scope(), "tasks/get", {"taskId": failed.task_id})
    assert got["status"] == "failed" and got["error"] == {"code": -32603, "message": "backend refused"}
    assert "result" not in got


async def test_cancel_stops_the_worker_call_and_wins_over_a_late_result(replicas: Replicas) -> None:
    host = replicas.driver.host(scope())
    record = await host.create("call-9", None)
    assert await replicas.other.answer(scope(), "tasks/cancel", {"taskId": record.task_id}) == {
        "resultType": "complete"
    }
    assert replicas.control.cancels == [("user_owner", "call-9")]
    await host.complete(record.task_id, {"content": []})
    assert not await host.seen(record.task_id)  # the driver learns there is nothing left to follow
    got = await replicas.other.answer(scope(), "tasks/get", {"taskId": record.task_id})
    assert got["status"] == "cancelled" and "result" not in got


async def test_a_task_whose_driver_stopped_is_reported_failed(replicas: Replicas) -> None:
    host = replicas.driver.host(scope())
    record = await host.create("call-3", None)
    replicas.clock.now += STALE_SECONDS / 2
    assert await host.seen(record.task_id)  # refreshed: still followed
    replicas.clock.now += STALE_SECONDS - 1
    got = await replicas.other.answer(scope(), "tasks/get", {"taskId": record.task_id})
    assert got["status"] == "working"
    replicas.clock.now += 2  # the driver's replica died: no refresh for longer than STALE_SECONDS
    got = await replicas.other.answer(scope(), "tasks/get", {"taskId": record.task_id})
    assert got["status"] == "failed" and "stopped" in got["error"]["message"]
