"""SSE responses, server-to-client requests, cancellation, the GET stream with list_changed and
resources/updated, and resumption with Last-Event-ID, with a fake ``worker`` runner."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.abilities import AbilityDef
from skillrelay_common.schemas.registry import SkillsetChanged
from skillrelay_common.schemas.sessions import GetSession, SessionInfo
from skillrelay_common.subjects import SESSIONS_GET
from skillrelay_devstack.edge import (
    ControlPlane,
    EdgeHarness,
    ability,
    demo_skillset,
    mcp_headers,
    sse_events,
    two_replicas,
)
from skillrelay_devstack.raw_mcp import initialize_request
from skillrelay_devstack.testing import create_database_now, cyclic_garbage
from skillrelay_edge.calls.context import CallContext, ClientRequestError

ACCEPT = "application/json, text/event-stream"
INIT = initialize_request(capabilities={"sampling": {}})


class FakeWorkerRunner:
    """Stands in for the worker runner: behaviour chosen by the tool name."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.cancelled = threading.Event()

    async def run(self, ctx: CallContext, handler: Any, arguments: dict[str, Any]) -> dict[str, Any]:
        if ctx.name == "progress":
            for step in range(3):
                await ctx.progress(step * 50, 100, f"step {step}")
                await ctx.log("info", f"step {step}")
            await ctx.log("debug", "filtered when the level is info")
            return {"content": [{"type": "text", "text": "done"}]}
        if ctx.name == "ask":
            try:
                answer = await ctx.request_client(
                    "sampling/createMessage", {"messages": [], "maxTokens": 5}, 10
                )
            except ClientRequestError as exc:
                return {"content": [{"type": "text", "text": f"error {exc.code}"}], "isError": True}
            return {"content": [{"type": "text", "text": answer["content"]["text"]}]}
        if ctx.name == "wait":
            await ctx.progress(1)
            await asyncio.to_thread(self.release.wait, 10)
            await ctx.progress(2)
            return {"content": [{"type": "text", "text": "released"}]}
        if ctx.name == "cancellable":
            await ctx.progress(1)
            try:
                await asyncio.wait_for(ctx.cancelled.wait(), 10)
                self.cancelled.set()
            except TimeoutError:
                pass
            return {"content": [{"type": "text", "text": "stopped"}]}
        return {"content": [{"type": "text", "text": "quiet"}]}


def _skillset() -> Any:
    skillset = demo_skillset("skillset_stream")
    worker = {"type": "worker", "subject": "fake"}
    extra: list[AbilityDef] = [
        ability(name, worker) for name in ("progress", "ask", "wait", "cancellable", "quiet")
    ]
    return msgspec.structs.replace(skillset, abilities=[*skillset.abilities, *extra])


@pytest.fixture(scope="module")
def runner() -> FakeWorkerRunner:
    return FakeWorkerRunner()


@pytest.fixture(scope="module")
def stream_edges(
    nats_url: str, runner: FakeWorkerRunner, postgres_admin_url: str
) -> Iterator[list[EdgeHarness]]:
    control = ControlPlane()
    control.add("mcpserver_stream", _skillset())
    database_url = create_database_now(postgres_admin_url)
    with two_replicas(nats_url, control, database_url, runners={"worker": runner}) as edges:
        yield edges


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15) as http:
        yield http


async def _initialize(client: httpx.AsyncClient, url: str) -> str:
    response = await client.post(url, headers=mcp_headers(), json=INIT)
    assert response.status_code == 200, response.text
    return response.headers["mcp-session-id"]


def _call(name: str, request_id: int = 5, **params: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": {}, **params},
    }


async def test_notifications_come_before_the_result_on_the_post_stream(
    stream_edges: list[EdgeHarness], client: httpx.AsyncClient
) -> None:
    url = stream_edges[0].mcp_url("mcpserver_stream")
    session = await _initialize(client, url)
    level = {"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": {"level": "info"}}
    assert (await client.post(url, headers=mcp_headers(session), json=level)).json()["result"] == {}
    response = await client.post(
        url, headers=mcp_headers(session), json=_call("progress", _meta={"progressToken": 1})
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    methods = [data.get("method", "result") for _, data in events]
    assert methods == ["notifications/progress", "notifications/message"] * 3 + ["result"]
    assert [
        data["params"]["progress"] for _, data in events if data.get("method") == "notifications/progress"
    ] == [0, 50, 100]
    assert events[-1][1]["result"]["content"][0]["text"] == "done"
    ids = [event_id for event_id, _ in events]
    assert all(ids) and len(set(ids)) == len(ids)
    # SEP-1699: the stream opens with a priming event (an id, a retry delay, empty data).
    first_block = response.text.split("\n\n", 1)[0].splitlines()
    assert first_block[0].startswith("id: ") and first_block[0].endswith("-0")
    assert first_block[1:] == ["retry: 1000", "data: "]
    # Resuming from the priming event on the other replica replays the whole stream.
    replayed = await client.get(
        stream_edges[1].mcp_url("mcpserver_stream"),
        headers={**mcp_headers(session), "accept": "text/event-stream", "last-event-id": first_block[0][4:]},
    )
    assert [event_id for event_id, _ in sse_events(replayed.text)] == ids


async def test_a_quiet_worker_call_answers_plain_json(
    stream_edges: list[EdgeHarness], client: httpx.AsyncClient
) -> None:
    url = stream_edges[0].mcp_url("mcpserver_stream")
    session = await _initialize(client, url)
    response = await client.post(url, headers=mcp_headers(session), json=_call("quiet"))
    assert response.headers["content-type"] == "application/json"
    assert response.json()["result"]["content"][0]["text"] == "quiet"


async def test_finished_calls_leave_no_reference_cycles(
    stream_edges: list[EdgeHarness], client: httpx.AsyncClient
) -> None:
    """The edge's objects of a finished request, streamed or not, are freed at once, not left to
    the cyclic GC (which then walks them, and all they hold, again and again)."""
    url = stream_edges[0].mcp_url("mcpserver_stream")
    session = await _initialize(client, url)
    with cyclic_garbage() as left:
        for name in ("quiet", "progress"):
            response = await client.post(url, headers=mcp_headers(session), json=_call(name))
            assert response.status_code == 200 and '"result"' in response.text
        await asyncio.sleep(0.2)  # the edge's request task ends just after the answer went out
    assert left == []


async def test_the_client_answer_may_reach_another_replica(
    stream_edges: list[EdgeHarness], client: httpx.AsyncClient
) -> None:
    first, second = (edge.mcp_url("mcpserver_stream") for edge in stream_edges)
    session = await _initialize(client, first)
    async with client.stream("POST", first, headers=mcp_headers(session), json=_call("ask")) as stream:
        lines = stream.aiter_lines()
        request = None
        async for line in lines:
            if line.startswith("data: ") and line[6:].strip():
                request = msgspec.json.decode(line[6:])
                break
        assert request is not None and request["method"] == "sampling/createMessage"
        answer = {
            "jsonrpc": "2.0",
            "id": request["id"],
            "result": {"role": "assistant", "content": {"type": "text", "text": "hi there"}, "model": "m"},
        }
        posted = await client.post(second, headers=mcp_headers(session), json=answer)
        assert posted.status_code == 202
        rest = "\n".join([line async for line in lines])
    assert "hi there" in rest


async def test_cancellation_reaches_the_call_from_another_replica(
    stream_edges: list[EdgeHarness], client: httpx.AsyncClient, runner: FakeWorkerRunner
) -> None:
    first, second = (edge.mcp_url("mcpserver_stream") for edge in stream_edges)
    session = await _initialize(client, first)
    last_id = ""
    async with client.stream(
        "POST",
        first,
        headers=mcp_headers(session),
        json=_call("cancellable", 9, _meta={"progressToken": "c"}),
    ) as stream:
        lines = stream.aiter_lines()
        async for line in lines:
            if line.startswith("id: "):
                last_id = line[4:]
            if line.startswith("data: ") and line[6:].strip():
                break
        notice = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}}
        assert (await client.post(second, headers=mcp_headers(session), json=notice)).status_code == 202
        await asyncio.wait_for(asyncio.to_thread(runner.cancelled.wait, 10), 10)
        # MCP: a cancelled request gets no response; its stream just ends.
        rest = [line async for line in lines]
    assert runner.cancelled.is_set()
    assert not [line for line in rest if line.startswith("data: ") and line[6:].strip()], rest
    # Resumed on the other replica, the stream ends the same way: no response, no hang.
    resumed = await client.get(second, headers={**mcp_headers(session), "last-event-id": last_id})
    assert resumed.status_code == 200
    assert '"result"' not in resumed.text and '"error"' not in resumed.text, resumed.text


async def test_resumption_on_another_replica(
    stream_edges: list[EdgeHarness], client: httpx.AsyncClient, runner: FakeWorkerRunner
) -> None:
    first, second = (edge.mcp_url("mcpserver_stream") for edge in stream_edges)
    session = await _initialize(client, first)
    last_id = None
    async with client.stream(
        "POST", first, headers=mcp_headers(session), json=_call("wait", 11, _meta={"progressToken": "w"})
    ) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("id: ") and not line.endswith("-0"):  # past the priming event
                last_id = line[4:]
                break
    assert last_id is not None
    runner.release.set()
    resumed = await client.get(
        second, headers={**mcp_headers(session), "accept": "text/event-stream", "last-event-id": last_id}
    )
    events = sse_events(resumed.text)
    assert events[0][1]["params"]["progress"] == 2
    assert events[-1][1]["result"]["content"][0]["text"] == "released"
    assert all(event_id != last_id for event_id, _ in events)


async def _read_get_stream(
    client: httpx.AsyncClient, url: str, session: str, count: int, opened: asyncio.Event
) -> list[Any]:
    found: list[Any] = []
    async with client.stream(
        "GET", url, headers={**mcp_headers(session), "accept": "text/event-stream"}
    ) as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            opened.set()
            if line.startswith("data: "):
                found.append(msgspec.json.decode(line[6:]))
                if len(found) == count:
                    return found
    return found


async def test_list_changed_and_resource_updates_reach_the_get_stream(
    stream_edges: list[EdgeHarness], client: httpx.AsyncClient, bus: Bus
) -> None:
    first, second = (edge.mcp_url("mcpserver_stream") for edge in stream_edges)
    session = await _initialize(client, first)
    subscribe = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "resources/subscribe",
        "params": {"uri": "test://static-text"},
    }
    assert (await client.post(first, headers=mcp_headers(session), json=subscribe)).json()["result"] == {}
    opened = asyncio.Event()
    reader = asyncio.create_task(_read_get_stream(client, second, session, 2, opened))
    await asyncio.wait_for(opened.wait(), 10)
    changed = SkillsetChanged(
        skillset_id="skillset_stream",
        owner_id="user_1",
        change="updated",
        entity="resource",
        uri="test://static-text",
        revision=2,
    )
    await bus.nc.publish("events.registry.resource.updated", msgspec.json.encode(changed))
    found = await asyncio.wait_for(reader, 10)
    assert [message["method"] for message in found] == [
        "notifications/resources/list_changed",
        "notifications/resources/updated",
    ]
    assert found[1]["params"] == {"uri": "test://static-text"}


async def test_subscriptions_made_at_once_on_two_replicas_are_all_kept(
    stream_edges: list[EdgeHarness], client: httpx.AsyncClient, bus: Bus
) -> None:
    urls = [edge.mcp_url("mcpserver_stream") for edge in stream_edges]
    session = await _initialize(client, urls[0])
    uris = [f"test://items/{n}" for n in range(12)]

    async def subscribe(n: int, uri: str) -> None:
        body = {"jsonrpc": "2.0", "id": n, "method": "resources/subscribe", "params": {"uri": uri}}
        answer = await client.post(urls[n % 2], headers=mcp_headers(session), json=body)
        assert answer.json()["result"] == {}

    await asyncio.gather(*(subscribe(n, uri) for n, uri in enumerate(uris)))
    stored = await bus.request(SESSIONS_GET, GetSession(session_id=session))
    assert isinstance(stored, SessionInfo)
    assert sorted(stored.state["subscriptions"]) == sorted(uris)
    unsubscribe = {"jsonrpc": "2.0", "id": 99, "method": "resources/unsubscribe", "params": {"uri": uris[0]}}
    assert (await client.post(urls[1], headers=mcp_headers(session), json=unsubscribe)).json()["result"] == {}
    stored = await bus.request(SESSIONS_GET, GetSession(session_id=session))
    assert isinstance(stored, SessionInfo) and sorted(stored.state["subscriptions"]) == sorted(uris[1:])


async def test_get_needs_a_session(stream_edges: list[EdgeHarness], client: httpx.AsyncClient) -> None:
    url = stream_edges[0].mcp_url("mcpserver_stream")
    headers = {**mcp_headers(), "accept": "text/event-stream"}
    assert (await client.get(url, headers=headers)).status_code == 400
    assert (await client.get(url, headers={**headers, "mcp-session-id": "nope"})).status_code == 404
    assert (await client.get(url, headers={**headers, "accept": "application/json"})).status_code == 406
