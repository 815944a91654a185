"""The everything worker answers what the conformance suite expects, through the edge's worker runner
over a real nats-server (the MCP client is faked; the whole-stack run is test_conformance.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from everything_worker import skillset
from everything_worker.worker import SEP1034_SCHEMA, build_worker
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.abilities import ResourceDef, WorkerHandler
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_edge.abilities.worker import WorkerRunner
from skillrelay_edge.calls.context import CallContext, CallMethod
from skillrelay_worker import Worker

INTEGRATION = IntegrationInfo(id="mcpserver_x", owner_id="user_x", name="x", skillset_id="skillset_x")
SAMPLED = {
    "role": "assistant",
    "content": {"type": "text", "text": "This is a test response from the client"},
    "model": "test-model",
    "stopReason": "endTurn",
}


class Principal:
    kind = "static"
    id = "static:v1"


class Client:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        self.sent.append((method, params))

    async def request_client(self, method: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.sent.append((method, params))
        if method == "sampling/createMessage":
            return SAMPLED
        return {"action": "accept", "content": {"username": "testuser", "email": "test@example.com"}}

    def context(self, method: CallMethod, name: str, **extra: Any) -> CallContext:
        return CallContext(
            method=method,
            name=name,
            integration=INTEGRATION,
            principal=Principal(),
            session_id="s",
            request_id=1,
            client_capabilities={"sampling": {}, "elicitation": {}},
            sink=self,  # type: ignore[arg-type]
            **extra,
        )


@pytest.fixture
async def served(nats_url: str) -> AsyncIterator[tuple[WorkerRunner, Worker]]:
    worker = build_worker(f"everything-{uuid.uuid4().hex[:8]}")
    await worker.start(nats_url, owner_id=INTEGRATION.owner_id)
    bus = await Bus.connect(nats_url, "edge")
    runner = WorkerRunner(bus, nats_url=nats_url)
    await runner.start()
    yield runner, worker
    await runner.stop()
    await bus.close()
    await worker.stop()


def test_every_worker_handler_of_the_skillset_exists() -> None:
    names = build_worker().names
    subject = "everything"
    worker_tools = {a["name"] for a in skillset.abilities(subject) if a["handler"]["type"] == "worker"}
    worker_prompts = {p["name"] for p in skillset.prompts(subject) if "handler" in p}
    assert worker_tools == set(names["tools"])
    assert worker_prompts == set(names["prompts"])
    assert all(tool["description"] for tool in skillset.abilities(subject))
    assert all(prompt["description"] for prompt in skillset.prompts(subject))


async def test_progress_then_result(served: tuple[WorkerRunner, Worker]) -> None:
    runner, worker = served
    client = Client()
    result = await runner.run(
        client.context("tools/call", "test_tool_with_progress", progress_token=1),
        WorkerHandler(subject=worker.subject),
        {},
    )
    assert [p["progress"] for _, p in client.sent] == [0, 50, 100]
    assert result == {"content": [{"type": "text", "text": "1"}]}


async def test_logging_sends_three_messages(served: tuple[WorkerRunner, Worker]) -> None:
    runner, worker = served
    client = Client()
    await runner.run(
        client.context("tools/call", "test_tool_with_logging", log_level="debug"),
        WorkerHandler(subject=worker.subject),
        {},
    )
    assert [m for m, _ in client.sent] == ["notifications/message"] * 3


async def test_sampling_and_elicitation(served: tuple[WorkerRunner, Worker]) -> None:
    runner, worker = served
    client = Client()
    handler = WorkerHandler(subject=worker.subject)
    sampled = await runner.run(
        client.context("tools/call", "test_sampling"), handler, {"prompt": "Test prompt for sampling"}
    )
    assert sampled == {
        "content": [{"type": "text", "text": "LLM response: This is a test response from the client"}]
    }
    assert client.sent[0] == (
        "sampling/createMessage",
        {
            "messages": [{"role": "user", "content": {"type": "text", "text": "Test prompt for sampling"}}],
            "maxTokens": 100,
        },
    )
    await runner.run(client.context("tools/call", "test_elicitation_sep1034_defaults"), handler, {})
    method, params = client.sent[-1]
    assert method == "elicitation/create"
    assert params["requestedSchema"] == SEP1034_SCHEMA


async def test_template_prompt_and_completion(served: tuple[WorkerRunner, Worker]) -> None:
    runner, worker = served
    client = Client()
    handler = WorkerHandler(subject=worker.subject)
    template = ResourceDef(id="resource_t", name="t", uri_template="test://template/{id}/data")
    read = await runner.run(
        client.context("resources/read", "test://template/123/data", target=template),
        handler,
        {"uri": "test://template/123/data", "id": "123"},
    )
    assert read["contents"][0]["uri"] == "test://template/123/data"
    assert '"id": "123"' in read["contents"][0]["text"]
    prompt = await runner.run(
        client.context("prompts/get", "test_prompt_with_arguments"),
        handler,
        {"arg1": "testValue1", "arg2": "testValue2"},
    )
    assert prompt["messages"][0]["content"]["text"] == (
        "Prompt with arguments: arg1='testValue1', arg2='testValue2'"
    )
    completion = await runner.run(
        client.context("completion/complete", "test_prompt_with_arguments"),
        handler,
        {
            "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
            "argument": {"name": "arg1", "value": "test"},
        },
    )
    assert completion["completion"]["values"] == ["test", "testValue1", "testing"]
