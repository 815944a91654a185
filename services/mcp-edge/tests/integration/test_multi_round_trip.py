"""Multi round-trip requests (2026-07-28) with a real worker over real NATS and two edge replicas:
a handler's questions become ``input_required`` results, and the client's retry, on either replica,
continues the same suspended handler. The ``requestState`` is refused when tampered, foreign or
expired, and a handler whose retry never comes is released by its timeout."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from skillrelay_devstack.edge import DEMO_OWNER, TOKEN, ControlPlane, EdgeHarness, ability, demo_skillset
from skillrelay_devstack.testing import until
from skillrelay_worker import Worker, WorkerContext

VERSION = "2026-07-28"
SUBJECT = f"mrtr-{uuid.uuid4().hex[:8]}"
NAME = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
CAPABLE = {"elicitation": {}, "sampling": {}}


def _skillset(skillset_id: str) -> Any:
    snapshot = demo_skillset(skillset_id)
    snapshot.abilities.extend(
        [
            ability("ask_twice", {"type": "worker", "subject": SUBJECT, "timeoutMs": 20_000}),
            ability("ask_briefly", {"type": "worker", "subject": SUBJECT, "timeoutMs": 700}),
            ability("needs_sampling", {"type": "worker", "subject": SUBJECT, "timeoutMs": 20_000}),
            ability("ask_pair", {"type": "worker", "subject": SUBJECT, "timeoutMs": 20_000}),
        ]
    )
    return snapshot


@pytest.fixture(scope="module")
def edges(nats_url: str) -> Iterator[list[EdgeHarness]]:
    control = ControlPlane()
    control.add("mcpserver_mrtr", _skillset("skillset_mrtr"))
    control.add("mcpserver_other", _skillset("skillset_other"))
    # Two replicas sharing the service secret, as every replica of a deployment does.
    replicas = [
        EdgeHarness(nats_url, control, secret_key="shared-secret-of-the-deployment") for _ in range(2)
    ]
    for replica in replicas:
        replica.start()
    yield replicas
    for replica in replicas:
        replica.stop()


@pytest.fixture
async def worker(nats_url: str) -> AsyncIterator[Worker]:
    running = Worker(SUBJECT)

    @running.tool("ask_twice")
    async def ask_twice(ctx: WorkerContext, args: dict[str, Any]) -> str:
        first = await ctx.elicit("Your name?", NAME, key="first")
        second = await ctx.elicit("Your name again?", NAME)  # named by the edge
        return f"{first['content']['name']} then {second['content']['name']}"

    @running.tool("ask_briefly")
    async def ask_briefly(ctx: WorkerContext, args: dict[str, Any]) -> str:
        answer = await ctx.elicit("Quick, your name?", NAME, key="quick")
        return str(answer)

    @running.tool("ask_pair")
    async def ask_pair(ctx: WorkerContext, args: dict[str, Any]) -> str:
        a, b = await asyncio.gather(ctx.elicit("A?", NAME, key="a"), ctx.elicit("B?", NAME, key="b"))
        return f"{a['content']['name']} {b['content']['name']}"

    @running.tool("needs_sampling")
    async def needs_sampling(ctx: WorkerContext, args: dict[str, Any]) -> str:
        answer = await ctx.sample("hello", 10)
        return str(answer)

    await running.start(nats_url, owner_id=DEMO_OWNER)
    yield running
    await running.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15) as http:
        yield http


async def _call(
    client: httpx.AsyncClient,
    edge: EdgeHarness,
    name: str,
    extra: dict[str, Any] | None = None,
    *,
    integration: str = "mcpserver_mrtr",
    capabilities: dict[str, Any] = CAPABLE,
) -> httpx.Response:
    meta = {
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }
    params = {"name": name, "arguments": {}, "_meta": meta, **(extra or {})}
    headers = {
        "accept": "application/json, text/event-stream",
        "authorization": f"Bearer {TOKEN}",
        "mcp-protocol-version": VERSION,
        "mcp-method": "tools/call",
        "mcp-name": name,
    }
    body = {"jsonrpc": "2.0", "id": uuid.uuid4().hex, "method": "tools/call", "params": params}
    return await client.post(edge.mcp_url(integration), headers=headers, json=body)


async def test_a_retry_on_either_replica_continues_the_same_handler(
    edges: list[EdgeHarness], worker: Worker, client: httpx.AsyncClient
) -> None:
    first, second = edges
    asked = (await _call(client, first, "ask_twice")).json()["result"]
    assert asked["resultType"] == "input_required"
    assert asked["inputRequests"] == {
        "first": {
            "method": "elicitation/create",
            "params": {"message": "Your name?", "requestedSchema": NAME},
        }
    }
    assert len(worker._inflight) == 1  # the handler waits in the worker, nowhere else
    answer = {"action": "accept", "content": {"name": "Ada"}}
    again = (
        await _call(
            client,
            second,
            "ask_twice",
            {"inputResponses": {"first": answer}, "requestState": asked["requestState"]},
        )
    ).json()["result"]
    assert again["resultType"] == "input_required" and again["requestState"] != asked["requestState"]
    [key] = again["inputRequests"]
    assert key.startswith("elicit-")
    done = (
        await _call(
            client,
            first,
            "ask_twice",
            {
                "inputResponses": {key: {"action": "accept", "content": {"name": "Lovelace"}}},
                "requestState": again["requestState"],
            },
        )
    ).json()["result"]
    assert done == {"content": [{"type": "text", "text": "Ada then Lovelace"}], "resultType": "complete"}
    await until(lambda: not worker._inflight, 5)


async def test_a_retry_without_the_answer_is_asked_again(
    edges: list[EdgeHarness], worker: Worker, client: httpx.AsyncClient
) -> None:
    asked = (await _call(client, edges[0], "ask_twice")).json()["result"]
    unanswered = {"inputResponses": {"other": {"action": "decline"}}, "requestState": asked["requestState"]}
    again = (await _call(client, edges[1], "ask_twice", unanswered)).json()["result"]
    assert again["resultType"] == "input_required" and list(again["inputRequests"]) == ["first"]
    # Answers sent with the first request are used at once: no round trip at all for that question.
    ready = {"inputResponses": {"first": {"action": "accept", "content": {"name": "Bo"}}}}
    partly = (await _call(client, edges[1], "ask_twice", ready)).json()["result"]
    assert partly["resultType"] == "input_required" and "first" not in partly["inputRequests"]


async def test_a_state_that_is_not_genuine_or_not_ours_is_refused(
    edges: list[EdgeHarness], worker: Worker, client: httpx.AsyncClient
) -> None:
    asked = (await _call(client, edges[0], "ask_twice")).json()["result"]
    answer = {"first": {"action": "accept", "content": {"name": "Eve"}}}
    for extra, integration in (
        ({"requestState": asked["requestState"] + "x"}, "mcpserver_mrtr"),
        ({"requestState": asked["requestState"][:-4]}, "mcpserver_mrtr"),
        ({"requestState": asked["requestState"]}, "mcpserver_other"),
    ):
        refused = await _call(
            client, edges[1], "ask_twice", {"inputResponses": answer, **extra}, integration=integration
        )
        assert refused.status_code == 200
        error = refused.json()["error"]
        assert error["code"] == -32602 and "requestState" in error["message"]
    # The genuine state still works after all those attempts.
    genuine = {"inputResponses": answer, "requestState": asked["requestState"]}
    assert (await _call(client, edges[1], "ask_twice", genuine)).json()["result"][
        "resultType"
    ] == "input_required"


async def test_a_retry_that_never_comes_releases_the_handler(
    edges: list[EdgeHarness], worker: Worker, client: httpx.AsyncClient
) -> None:
    asked = (await _call(client, edges[0], "ask_briefly")).json()["result"]
    assert asked["resultType"] == "input_required"
    await until(lambda: not worker._inflight, 15)  # the ability's timeout ended the waiting handler
    late = {
        "inputResponses": {"quick": {"action": "accept", "content": {"name": "Late"}}},
        "requestState": asked["requestState"],
    }
    error = (await _call(client, edges[1], "ask_briefly", late)).json()["error"]
    assert error["code"] == -32602 and "expired" in error["message"]


async def test_a_question_the_client_cannot_answer_is_a_missing_capability(
    edges: list[EdgeHarness], worker: Worker, client: httpx.AsyncClient
) -> None:
    refused = await _call(client, edges[0], "needs_sampling", capabilities={"elicitation": {}})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["data"]) == (-32021, {"requiredCapabilities": {"sampling": {}}})
    await until(lambda: not worker._inflight, 5)  # the handler was cancelled, not left waiting


async def test_an_answered_question_is_never_asked_again(
    edges: list[EdgeHarness], worker: Worker, client: httpx.AsyncClient
) -> None:
    """Two questions at once, the second answered up front: only the first goes to the client, and
    its retry (on the other replica, which has the worker republish what is still open) completes."""
    ready = {"inputResponses": {"b": {"action": "accept", "content": {"name": "Bee"}}}}
    asked = (await _call(client, edges[0], "ask_pair", ready)).json()["result"]
    assert asked["resultType"] == "input_required" and list(asked["inputRequests"]) == ["a"]
    answer = {
        "inputResponses": {"a": {"action": "accept", "content": {"name": "Ay"}}},
        "requestState": asked["requestState"],
    }
    done = (await _call(client, edges[1], "ask_pair", answer)).json()["result"]
    assert done == {"content": [{"type": "text", "text": "Ay Bee"}], "resultType": "complete"}
