"""Worker abilities over a real nats-server: the worker SDK on one side, the edge's runner on the other,
with a CallContext whose stream is a list."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from skillrelay_common.messaging import Bus, encode
from skillrelay_common.schemas.abilities import ResourceDef, WorkerHandler
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_devstack.testing import cyclic_garbage, until
from skillrelay_edge.abilities.worker import WorkerRunner
from skillrelay_edge.calls.context import (
    REQUEST_TIMEOUT,
    AbilityError,
    CallContext,
    CallMethod,
    ClientRequestError,
)
from skillrelay_worker import ToolError, Worker, WorkerContext, embedded_resource, text
from skillrelay_worker.protocol import WorkerResult
from skillrelay_worker.subjects import worker_events_subject

INTEGRATION = IntegrationInfo(id="mcpserver_x", owner_id="user_x", name="x", skillset_id="skillset_x")


class Principal:
    kind = "static"
    id = "static:v1"


class FakeClient:
    """The MCP client as the runner sees it: what was sent on the stream, canned answers."""

    def __init__(self, answers: dict[str, dict[str, Any]] | None = None) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.answers = answers or {}

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        self.sent.append((method, params))

    async def request_client(self, method: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.sent.append((method, params))
        if method not in self.answers:
            raise ClientRequestError(-32601, f"{method} refused")
        return self.answers[method]

    def context(
        self,
        method: CallMethod = "tools/call",
        name: str = "",
        *,
        progress_token: str | int | None = None,
        log_level: str | None = None,
        target: Any = None,
    ) -> CallContext:
        return CallContext(
            method=method,
            name=name,
            integration=INTEGRATION,
            principal=Principal(),
            session_id="session-1",
            request_id=7,
            progress_token=progress_token,
            log_level=log_level,
            client_capabilities={"sampling": {}, "elicitation": {}},
            target=target,
            sink=self,  # type: ignore[arg-type]
        )


def build_worker(subject: str) -> Worker:
    worker = Worker(subject, shutdown_grace=5.0)

    @worker.tool("echo")
    async def echo(ctx: WorkerContext, args: dict[str, Any]) -> str:
        return f"echo: {args.get('text', '')}"

    @worker.tool("meta")
    async def meta(ctx: WorkerContext, args: dict[str, Any]) -> dict[str, Any]:
        return {"content": [], "structuredContent": ctx.meta}

    @worker.tool("steps")
    async def steps(ctx: WorkerContext, args: dict[str, Any]) -> list[dict[str, Any]]:
        await ctx.log("debug", "hidden below info")
        for step in range(3):
            await ctx.report_progress(step * 50, 100, f"step {step}")
            await ctx.log("info", f"step {step}")
        return [text("done"), embedded_resource("test://x", text="x")]

    @worker.tool("ask")
    async def ask(ctx: WorkerContext, args: dict[str, Any]) -> str:
        sampled = await ctx.sample(args["prompt"], 50)
        return f"LLM said: {sampled['content']['text']}"

    @worker.tool("ask_and_wait")
    async def ask_and_wait(ctx: WorkerContext, args: dict[str, Any]) -> str:
        try:
            await ctx.elicit("never answered", {"type": "object", "properties": {}})
        except asyncio.CancelledError:
            worker.cancelled_calls.append(ctx.call.call_id)  # type: ignore[attr-defined]
            raise
        return "answered"

    @worker.tool("roots")
    async def roots(ctx: WorkerContext, args: dict[str, Any]) -> str:
        return str(len(await ctx.list_roots()))

    @worker.tool("huge")
    async def huge(ctx: WorkerContext, args: dict[str, Any]) -> str:
        return "x" * 2_000_000

    @worker.resource_template("test://huge/{id}")
    async def huge_resource(ctx: WorkerContext, uri: str, params: dict[str, str]) -> str:
        return "x" * 2_000_000

    @worker.tool("fails")
    async def fails(ctx: WorkerContext, args: dict[str, Any]) -> str:
        raise ToolError("nope")

    @worker.tool("crashes")
    async def crashes(ctx: WorkerContext, args: dict[str, Any]) -> str:
        raise RuntimeError("secret detail")

    @worker.tool("sleeps")
    async def sleeps(ctx: WorkerContext, args: dict[str, Any]) -> str:
        try:
            await asyncio.sleep(float(args.get("seconds", 60)))
        except asyncio.CancelledError:
            worker.cancelled_calls.append(ctx.call.call_id)  # type: ignore[attr-defined]
            raise
        return "slept"

    @worker.resource_template("test://template/{id}/data", mime_type="application/json")
    async def template(ctx: WorkerContext, uri: str, params: dict[str, str]) -> str:
        return f'{{"id": "{params["id"]}"}}'

    @worker.prompt("greet", description="Greets")
    async def greet(ctx: WorkerContext, args: dict[str, str]) -> list[dict[str, Any]]:
        return [{"role": "user", "content": text(f"Hello {args['name']}")}]

    @worker.completion("greet")
    async def complete(ctx: WorkerContext, argument: str, value: str, context: dict[str, str]) -> list[str]:
        return [name for name in ("alice", "albert", "bob") if name.startswith(value)]

    worker.cancelled_calls = []  # type: ignore[attr-defined]
    return worker


@pytest.fixture
async def edge(nats_url: str) -> AsyncIterator[WorkerRunner]:
    bus = await Bus.connect(nats_url, "edge")
    # The default slack: the worker runs in this process, and a handler's crash traceback rendered on a
    # loaded machine has blocked the loop (and so its heartbeats) for over a second.
    runner = WorkerRunner(bus, nats_url=nats_url, heartbeat_ms=200, silence_slack=2.0)
    await runner.start()
    yield runner
    await runner.stop()
    await bus.close()


@pytest.fixture
async def worker(nats_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Worker]:
    running = build_worker(f"test-{request.node.name[-40:].replace('[', '').replace(']', '')}")
    await running.start(nats_url, owner_id=INTEGRATION.owner_id)
    yield running
    await running.stop()


def handler(worker: Worker, timeout_ms: int = 5_000) -> WorkerHandler:
    return WorkerHandler(subject=worker.subject, timeout_ms=timeout_ms)


async def test_tool_result_comes_back(edge: WorkerRunner, worker: Worker) -> None:
    client = FakeClient()
    result = await edge.run(client.context(name="echo"), handler(worker), {"text": "hi"})
    assert result == {"content": [{"type": "text", "text": "echo: hi"}]}


async def test_finished_calls_leave_no_reference_cycles(edge: WorkerRunner, worker: Worker) -> None:
    """Nothing of a finished call waits for the cyclic GC, on the runner's side or the worker's."""
    answer = {"role": "assistant", "content": {"type": "text", "text": "42"}, "model": "m"}
    with cyclic_garbage() as left:
        for name in ("echo", "steps", "ask", "fails"):
            ctx = FakeClient({"sampling/createMessage": answer}).context(name=name, progress_token=1)
            result = await edge.run(ctx, handler(worker), {"text": "hi", "prompt": "p"})
            assert result["content"]
        await asyncio.sleep(0.1)  # the worker's side of a call ends just after its answer is sent
    assert left == []


async def test_the_requests_meta_reaches_the_handler(edge: WorkerRunner, worker: Worker) -> None:
    ctx = FakeClient().context(name="meta")
    ctx.meta = {"traceparent": "00-abc-def-01", "app.example/tenant": "t1"}
    result = await edge.run(ctx, handler(worker), {})
    assert result["structuredContent"] == {"traceparent": "00-abc-def-01", "app.example/tenant": "t1"}


async def test_progress_and_logs_arrive_in_order_before_the_result(
    edge: WorkerRunner, worker: Worker
) -> None:
    client = FakeClient()
    ctx = client.context(name="steps", progress_token=1, log_level="info")
    result = await edge.run(ctx, handler(worker), {})
    assert [method for method, _ in client.sent] == ["notifications/progress", "notifications/message"] * 3
    progress = [params for method, params in client.sent if method == "notifications/progress"]
    assert [p["progress"] for p in progress] == [0, 50, 100]
    assert all(p["progressToken"] == 1 and p["total"] == 100 for p in progress)
    logs = [params for method, params in client.sent if method == "notifications/message"]
    assert logs[0] == {"level": "info", "data": "step 0"}
    assert result["content"][1]["resource"]["uri"] == "test://x"


async def test_sampling_goes_to_the_client_and_back(edge: WorkerRunner, worker: Worker) -> None:
    answer = {"role": "assistant", "content": {"type": "text", "text": "42"}, "model": "m"}
    client = FakeClient({"sampling/createMessage": answer})
    result = await edge.run(client.context(name="ask"), handler(worker), {"prompt": "meaning?"})
    assert result == {"content": [{"type": "text", "text": "LLM said: 42"}]}
    method, params = client.sent[0]
    assert method == "sampling/createMessage"
    assert params == {
        "messages": [{"role": "user", "content": {"type": "text", "text": "meaning?"}}],
        "maxTokens": 50,
    }


async def test_a_missing_client_capability_fails_the_tool_without_asking(
    edge: WorkerRunner, worker: Worker
) -> None:
    client = FakeClient({"roots/list": {"roots": []}})
    result = await edge.run(client.context(name="roots"), handler(worker), {})
    assert result == {
        "content": [{"type": "text", "text": "the client does not support roots"}],
        "isError": True,
    }
    assert client.sent == []


async def test_tool_errors_are_is_error_results_without_internals(edge: WorkerRunner, worker: Worker) -> None:
    client = FakeClient()
    failed = await edge.run(client.context(name="fails"), handler(worker), {})
    assert failed == {"content": [{"type": "text", "text": "nope"}], "isError": True}
    crashed = await edge.run(client.context(name="crashes"), handler(worker), {})
    assert crashed["isError"] is True
    assert "secret" not in str(crashed)


async def test_a_result_too_large_for_one_message_is_a_clear_error(
    edge: WorkerRunner, worker: Worker
) -> None:
    """Regression: the worker could not publish a result over NATS's max_payload, so the call only
    went silent; now the client is told why (a tool error, or a JSON-RPC error for a resource)."""
    result = await edge.run(FakeClient().context(name="huge"), handler(worker), {})
    assert result["isError"] is True
    assert "fit one message" in result["content"][0]["text"]
    resource = ResourceDef(id="r", name="huge", uri_template="test://huge/{id}")
    with pytest.raises(AbilityError, match="fit one message"):
        await edge.run(
            FakeClient().context("resources/read", "test://huge/1", target=resource),
            handler(worker),
            {"uri": "test://huge/1", "id": "1"},
        )


async def test_arguments_too_large_for_one_message_are_invalid_params(
    edge: WorkerRunner, worker: Worker
) -> None:
    with pytest.raises(AbilityError, match="reach a worker") as raised:
        await edge.run(FakeClient().context(name="echo"), handler(worker), {"text": "x" * 2_000_000})
    assert raised.value.code == -32602


async def test_no_worker_running_is_a_clear_error_at_once(edge: WorkerRunner) -> None:
    started = time.monotonic()
    with pytest.raises(AbilityError, match="no worker is serving 'absent'"):
        await edge.run(FakeClient().context(name="echo"), WorkerHandler(subject="absent"), {})
    assert time.monotonic() - started < 2.0  # at once: no waiting for the ability's timeout


async def test_a_slow_worker_times_out_and_is_cancelled(edge: WorkerRunner, worker: Worker) -> None:
    started = time.monotonic()
    with pytest.raises(AbilityError) as raised:
        await edge.run(FakeClient().context(name="sleeps"), handler(worker, timeout_ms=400), {})
    assert raised.value.code == REQUEST_TIMEOUT
    assert "within 0.4s" in raised.value.message
    assert time.monotonic() - started < 3.0
    await until(lambda: len(worker.cancelled_calls) == 1, 2.0)  # type: ignore[attr-defined]


async def test_heartbeats_keep_a_call_longer_than_the_silence_limit_alive(
    edge: WorkerRunner, worker: Worker
) -> None:
    # 3 s is past the runner's silence limit (3 x 200 ms + 2 s): only heartbeats keep it waiting.
    result = await edge.run(FakeClient().context(name="sleeps"), handler(worker), {"seconds": 3.0})
    assert result == {"content": [{"type": "text", "text": "slept"}]}


async def test_client_cancellation_stops_the_handler(edge: WorkerRunner, worker: Worker) -> None:
    ctx = FakeClient().context(name="sleeps")
    call = asyncio.create_task(edge.run(ctx, handler(worker), {}))
    await until(lambda: bool(worker._inflight), 2.0)
    ctx.cancel()
    with pytest.raises(AbilityError, match="cancelled"):
        await asyncio.wait_for(call, 2.0)
    await until(lambda: len(worker.cancelled_calls) == 1, 2.0)  # type: ignore[attr-defined]


async def test_cancelling_while_the_client_is_asked_cancels_the_handler(
    edge: WorkerRunner, worker: Worker
) -> None:
    client = FakeClient()
    ctx = client.context(name="ask_and_wait")

    async def unanswered(method: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        # Like the edge: a pending client request ends with an error when the call is cancelled.
        client.sent.append((method, params))
        await ctx.cancelled.wait()
        raise ClientRequestError(REQUEST_TIMEOUT, "the request was cancelled")

    client.request_client = unanswered  # type: ignore[method-assign]
    call = asyncio.create_task(edge.run(ctx, handler(worker), {}))
    await until(lambda: bool(client.sent), 2.0)
    ctx.cancel()
    with pytest.raises(AbilityError, match="cancelled"):
        await asyncio.wait_for(call, 2.0)
    # The handler is cancelled, not handed an error to turn into a result.
    await until(lambda: len(worker.cancelled_calls) == 1, 2.0)  # type: ignore[attr-defined]


async def test_a_crashed_worker_is_noticed_by_its_silence(edge: WorkerRunner, nats_url: str) -> None:
    crashing = build_worker("test-crashing")
    await crashing.start(nats_url, owner_id=INTEGRATION.owner_id)
    ctx = FakeClient().context(name="sleeps")
    call = asyncio.create_task(edge.run(ctx, handler(crashing, timeout_ms=30_000), {}))
    await until(lambda: bool(crashing._inflight), 2.0)
    started = time.monotonic()
    # Like a killed process: the connection goes away, nothing is drained or answered.
    assert crashing._lane is not None
    await crashing._lane.close(flush=False)
    for task, _ in list(crashing._inflight.values()):
        task.cancel()
    with pytest.raises(AbilityError, match="stopped responding"):
        await asyncio.wait_for(call, 15.0)
    assert time.monotonic() - started < 15.0  # by its silence (2.6 s), well before the 30 s timeout


async def test_templated_resource_prompt_and_completion(edge: WorkerRunner, worker: Worker) -> None:
    client = FakeClient()
    resource = ResourceDef(id="resource_x", name="t", uri_template="test://template/{id}/data")
    read = await edge.run(
        client.context("resources/read", "test://template/123/data", target=resource),
        handler(worker),
        {"uri": "test://template/123/data", "id": "123"},
    )
    assert read == {
        "contents": [
            {"uri": "test://template/123/data", "mimeType": "application/json", "text": '{"id": "123"}'}
        ]
    }
    prompt = await edge.run(client.context("prompts/get", "greet"), handler(worker), {"name": "Ada"})
    assert prompt == {
        "messages": [{"role": "user", "content": {"type": "text", "text": "Hello Ada"}}],
        "description": "Greets",
    }
    completion = await edge.run(
        client.context("completion/complete", "greet"),
        handler(worker),
        {"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "name", "value": "al"}},
    )
    assert completion == {"completion": {"values": ["alice", "albert"], "total": 2, "hasMore": False}}


async def test_unknown_resource_is_resource_not_found(edge: WorkerRunner, worker: Worker) -> None:
    with pytest.raises(AbilityError) as raised:
        await edge.run(
            FakeClient().context("resources/read", "test://nothing"),
            handler(worker),
            {"uri": "test://nothing"},
        )
    assert raised.value.code == -32002


async def test_workers_of_one_subject_share_the_calls(edge: WorkerRunner, nats_url: str) -> None:
    first, second = build_worker("test-shared"), build_worker("test-shared")
    served: list[str] = []
    for index, each in enumerate((first, second)):

        @each.tool("who")
        async def who(ctx: WorkerContext, args: dict[str, Any], index: int = index) -> str:
            served.append(str(index))
            return str(index)

        await each.start(nats_url, owner_id=INTEGRATION.owner_id)
    try:
        client = FakeClient()
        answers = await asyncio.gather(
            *(edge.run(client.context(name="who"), handler(first), {}) for _ in range(40))
        )
        assert len(answers) == 40 and len(served) == 40  # each call served exactly once
        assert set(served) == {"0", "1"}
    finally:
        await first.stop()
        await second.stop()


async def test_stopping_a_worker_lets_calls_in_flight_finish(edge: WorkerRunner, nats_url: str) -> None:
    draining = build_worker("test-draining")
    await draining.start(nats_url, owner_id=INTEGRATION.owner_id)
    call = asyncio.create_task(
        edge.run(FakeClient().context(name="sleeps"), handler(draining), {"seconds": 0.3})
    )
    await until(lambda: bool(draining._inflight), 2.0)
    await draining.stop()
    assert await asyncio.wait_for(call, 2.0) == {"content": [{"type": "text", "text": "slept"}]}
    with pytest.raises(AbilityError, match="no worker"):
        await edge.run(FakeClient().context(name="echo"), handler(draining), {})


async def test_an_event_under_another_owner_never_reaches_the_call(
    edge: WorkerRunner, worker: Worker, bus: Bus
) -> None:
    """A worker may publish events of its own owner's calls only; the edge also drops an event whose
    subject names another owner than the call's, so no owner can answer another's call."""
    call = asyncio.create_task(
        edge.run(FakeClient().context(name="sleeps"), handler(worker), {"seconds": 0.5})
    )
    await until(lambda: bool(worker._inflight), 5.0)
    call_id = next(iter(worker._inflight))
    forged = WorkerResult(call_id=call_id, seq=1, result={"content": [{"type": "text", "text": "forged"}]})
    await bus.nc.publish(worker_events_subject(edge.edge_key, "user_other", call_id), encode(forged))
    await bus.nc.flush()
    assert await call == {"content": [{"type": "text", "text": "slept"}]}
