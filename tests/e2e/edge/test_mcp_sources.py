"""Skillset sources of type ``mcp`` through the edge: an upstream MCP server written with the official
Python SDK (``skillrelay_devstack.upstream``) federated into a skillset, called by the official SDK
client in both eras across two edge replicas behind a round-robin "balancer" (each request goes to
the next replica), with progress, log messages, elicitation, resources, prompts, the source's own
credentials, cancellation, a timeout and an unreachable upstream beside working ones, and the
upstream's list_changed turned into a refresh request to the registry."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import mcp.types as types
import msgspec
import pytest
from mcp.client import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from prometheus_client import REGISTRY
from sse_starlette.sse import AppStatus

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.abilities import AbilityDef, McpSourceHandler, SourceDef
from skillrelay_common.schemas.base import Ok
from skillrelay_common.schemas.registry import RefreshSource, SkillsetChanged, SourceResourceUpdated
from skillrelay_common.subjects import REGISTRY_SOURCE_REFRESH, REGISTRY_SOURCE_RESOURCE_UPDATED
from skillrelay_common.upstream import read_catalog
from skillrelay_devstack.edge import (
    DEMO_OWNER,
    TOKEN,
    ControlPlane,
    EdgeHarness,
    two_replicas,
)
from skillrelay_devstack.embedded import free_port
from skillrelay_devstack.raw_mcp import initialize_request
from skillrelay_devstack.testing import create_database_now
from skillrelay_devstack.upstream import UpstreamServer, source_skillset
from skillrelay_edge.abilities.mcp_source import McpSourceRunner

pytestmark = pytest.mark.timeout(180)
INTEGRATION = "mcpserver_sources"
OTHER_INTEGRATION = "mcpserver_sources_other"
UPSTREAM_SECRET = "Bearer upstream-only-secret"
WAIT = 20.0


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


def _skillset(upstream: UpstreamServer) -> Any:
    source = SourceDef(
        id="src_up",
        type="mcp",
        name="tools-upstream",
        url=upstream.url,
        headers={"Authorization": UPSTREAM_SECRET},
    )
    catalog = asyncio.run(read_catalog(source, allow_private=True))
    skillset = source_skillset("skillset_sources", source, catalog, prefix="up_")
    # Beside it: a source whose upstream is down, and one with a timeout shorter than its tool.
    down = SourceDef(
        id="src_down", type="mcp", name="down-upstream", url=f"http://127.0.0.1:{free_port()}/mcp"
    )
    short = SourceDef(id="src_short", type="mcp", name="short-upstream", url=upstream.url, timeout_ms=1_000)
    extra = [
        AbilityDef(
            id="a_down", name="down_echo", handler=McpSourceHandler(source_id="src_down", name="echo")
        ),
        AbilityDef(
            id="a_short", name="short_slow", handler=McpSourceHandler(source_id="src_short", name="slow")
        ),
        AbilityDef(
            id="a_short_ask",
            name="short_ask",
            handler=McpSourceHandler(source_id="src_short", name="ask_twice"),
        ),
    ]
    return msgspec.structs.replace(
        skillset, abilities=[*skillset.abilities, *extra], sources=[*skillset.sources, down, short]
    )


@pytest.fixture(scope="module")
def control(upstream: UpstreamServer) -> ControlPlane:
    """What every edge harness of this module serves as the registry and auth (each serves it on the
    same NATS subjects, so any of them may answer any replica's question: one control plane for all)."""
    plane = ControlPlane()
    plane.add(INTEGRATION, _skillset(upstream))
    plane.add(OTHER_INTEGRATION, _skillset(upstream))
    return plane


@pytest.fixture(scope="module")
def edges(nats_url: str, postgres_admin_url: str, control: ControlPlane) -> Iterator[list[EdgeHarness]]:
    database_url = create_database_now(postgres_admin_url)
    with two_replicas(
        nats_url, control, database_url, allow_private_http_targets=True, secret_key="s" * 32
    ) as replicas:
        yield replicas


class RoundRobin(httpx.AsyncBaseTransport):
    """Each request to the next edge replica; notes (replica, method, carries inputResponses).
    With ``rotate_on``, only requests of those methods go round; the others go to the first replica."""

    def __init__(self, replicas: list[str], rotate_on: frozenset[str] | None = None) -> None:
        self._replicas = [httpx.URL(url) for url in replicas]
        self._inner = httpx.AsyncHTTPTransport()
        self._next = 0
        self._rotate_on = rotate_on
        self.served: list[tuple[int, str | None, bool]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body: dict[str, Any] = {}
        if request.method == "POST":
            try:
                body = json.loads(request.content or b"{}")
            except ValueError:
                body = {}
        replica = 0
        if self._rotate_on is None or body.get("method") in self._rotate_on:
            replica = self._next % len(self._replicas)
            self._next += 1
        params = body.get("params") if isinstance(body.get("params"), dict) else {}
        self.served.append((replica, body.get("method"), "inputResponses" in (params or {})))
        target = self._replicas[replica]
        request.url = request.url.copy_with(host=target.host, port=target.port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class Seen:
    def __init__(self) -> None:
        self.elicited: list[str] = []
        self.logs: list[Any] = []
        self.progress: list[float] = []

    async def on_elicitation(self, context: ClientRequestContext, params: Any) -> types.ElicitResult:
        self.elicited.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params.data)

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress.append(progress)


@pytest.fixture
async def balancer(edges: list[EdgeHarness]) -> AsyncIterator[RoundRobin]:
    transport = RoundRobin([edge.url for edge in edges])
    yield transport
    await transport.aclose()


def texts(result: types.CallToolResult) -> list[str]:
    return [block.text for block in result.content if isinstance(block, types.TextContent)]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_sdk_client_uses_an_upstream_through_two_replicas(
    edges: list[EdgeHarness], balancer: RoundRobin, upstream: UpstreamServer, mode: str
) -> None:
    seen = Seen()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx.AsyncClient(transport=balancer, headers=headers, timeout=30) as http,
        Client(
            streamable_http_client(edges[0].mcp_url(INTEGRATION), http_client=http),
            mode=mode,  # type: ignore[arg-type]
            elicitation_callback=seen.on_elicitation,
            logging_callback=seen.on_log,
            log_level="debug",
        ) as client,
    ):
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"up_echo", "up_add", "up_count", "up_ask_name", "up_slow", "down_echo"} <= names

        assert texts(await client.call_tool("up_echo", {"text": "hi"})) == ["hi"]
        added = await client.call_tool("up_add", {"a": 2, "b": 3})
        assert added.structured_content == {"total": 5}

        counted = await client.call_tool("up_count", {"steps": 3}, progress_callback=seen.on_progress)
        assert texts(counted) == ["counted to 3"]
        assert seen.progress == [1, 2, 3]
        assert seen.logs == ["counted 1", "counted 2", "counted 3"]

        # The upstream asks the user's name: answered by the client's callback, on whichever replica.
        assert texts(await client.call_tool("up_ask_name", {})) == ["Hello, Ada!"]
        assert seen.elicited == ["What is your name?"]

        # An argument the upstream's tool marks x-mcp-header: a 2026 upstream gets it mirrored in its
        # Mcp-Param-Region header (the SDK's server refuses the call without it), and the client's own
        # header to the edge (sent by the SDK client at 2026-07-28) is checked by the edge.
        located = await client.call_tool("up_locate", {"region": "Köln", "text": "hi"})
        assert texts(located) == ["Köln: hi"], located

        # The upstream sees the source's credential, never the client's token.
        assert texts(await client.call_tool("up_whoami", {})) == [f"authorization={UPSTREAM_SECRET}"]

        item = await client.read_resource("upstream://items/42")
        assert item.contents[0].text == "item 42"  # type: ignore[union-attr]
        greeting = await client.read_resource("upstream://greeting")
        assert greeting.contents[0].text == "hello from upstream"  # type: ignore[union-attr]
        prompt = await client.get_prompt("up_greet", {"name": "Ada"})
        assert "Ada" in prompt.messages[0].content.text  # type: ignore[union-attr]

        # An upstream that is down is a tool error naming it; the rest of the skillset still answers.
        down = await client.call_tool("down_echo", {"text": "x"})
        assert down.is_error and "cannot reach upstream down-upstream" in texts(down)[0]
        slow = await client.call_tool("short_slow", {"seconds": 30})
        assert slow.is_error and "did not answer tools/call within 1000 ms" in texts(slow)[0]
        assert texts(await client.call_tool("up_echo", {"text": "still here"})) == ["still here"]
    assert {replica for replica, *_ in balancer.served} == {0, 1}
    if mode == "auto":
        retries = [entry for entry in balancer.served if entry[1] == "tools/call" and entry[2]]
        assert len(retries) == 1  # the elicitation's answer came back as a retry (to any replica)
        assert all(method != "initialize" for _, method, _ in balancer.served)
    ok = REGISTRY.get_sample_value(
        "skillrelay_source_calls_total", {"source": "src_up", "method": "tools/call", "outcome": "ok"}
    )
    unreachable = REGISTRY.get_sample_value(
        "skillrelay_source_calls_total",
        {"source": "src_down", "method": "tools/call", "outcome": "unreachable"},
    )
    assert ok is not None and ok >= 7 and unreachable is not None and unreachable >= 1


async def test_a_cancelled_call_is_cancelled_upstream(
    edges: list[EdgeHarness], upstream: UpstreamServer
) -> None:
    url = edges[0].mcp_url(INTEGRATION)
    base = {"accept": "application/json, text/event-stream", "authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(timeout=WAIT) as http:
        opened = await http.post(url, json=initialize_request(), headers=base)
        session = {
            **base,
            "mcp-session-id": opened.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-11-25",
        }
        await http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
        signal = upstream.server.cancelled_signal  # type: ignore[attr-defined]
        signal.clear()
        started = upstream.server.slow_started  # type: ignore[attr-defined]
        started.clear()
        call = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "up_slow", "arguments": {"seconds": 60}},
        }
        pending = asyncio.create_task(http.post(url, json=call, headers=session))
        assert await asyncio.to_thread(started.wait, WAIT)  # the call reached the upstream
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
        # Sent to the other replica: the edge's cancellation reaches the call wherever it runs.
        other = edges[1].mcp_url(INTEGRATION)
        assert (await http.post(other, json=cancel, headers=session)).status_code == 202
        await asyncio.wait_for(pending, WAIT)
        assert await asyncio.to_thread(signal.wait, WAIT)
        assert upstream.server.cancelled[-1] == 60  # type: ignore[attr-defined]


async def test_list_changed_from_the_upstream_asks_the_registry_to_refresh_the_source(
    edges: list[EdgeHarness], nats_url: str, balancer: RoundRobin
) -> None:
    asked: asyncio.Queue[str] = asyncio.Queue()

    async def refresh(request: RefreshSource) -> Ok:
        await asked.put(request.source_id)
        return Ok()

    registry = await Bus.connect(nats_url, "test-registry-refresh")
    registry.serve(REGISTRY_SOURCE_REFRESH, refresh)
    await registry.start()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with (
            httpx.AsyncClient(transport=balancer, headers=headers, timeout=30) as http,
            Client(streamable_http_client(edges[0].mcp_url(INTEGRATION), http_client=http)) as client,
        ):
            # A first call through each replica opens its watch of the upstream (listen streams open
            # asynchronously): change the upstream's tools until a refresh is asked for.
            async with asyncio.timeout(WAIT):
                source_id = None
                attempt = 0
                while source_id is None:
                    attempt += 1
                    await client.call_tool("up_add_tool", {"name": f"late_{attempt}"})
                    with contextlib.suppress(TimeoutError):
                        source_id = await asyncio.wait_for(asked.get(), 1.0)
        assert source_id == "src_up"
    finally:
        await registry.close()


async def test_resources_updated_from_the_upstream_reaches_a_subscriber_on_the_other_replica(
    edges: list[EdgeHarness], nats_url: str, balancer: RoundRobin
) -> None:
    """The upstream says its greeting changed: the replica watching it asks the registry
    (``registry.source.resource_updated``), whose ``resource`` event reaches every replica, and a 2026
    client listening on the other replica for that URI hears ``resources/updated``."""
    asked: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    registry = await Bus.connect(nats_url, "test-registry-resource-updated")

    async def resource_updated(request: SourceResourceUpdated) -> Ok:
        # As the registry does: a resource event of the source's skillset, no revision bump.
        await asked.put((request.source_id, request.uri))
        event = SkillsetChanged(
            skillset_id="skillset_sources",
            owner_id=DEMO_OWNER,
            change="updated",
            entity="resource",
            item_id=f"{request.source_id}:{request.uri}",
            uri=request.uri,
        )
        await registry.nc.publish("events.registry.resource.updated", msgspec.json.encode(event))
        return Ok()

    registry.serve(REGISTRY_SOURCE_RESOURCE_UPDATED, resource_updated)
    await registry.start()
    heard = asyncio.Event()
    listening = asyncio.Event()
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    listen = {
        "jsonrpc": "2.0",
        "id": "listen-1",
        "method": "subscriptions/listen",
        "params": {"notifications": {"resourceSubscriptions": ["upstream://greeting"]}, "_meta": meta},
    }
    listen_headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "subscriptions/listen",
    }

    async def follow(http: httpx.AsyncClient) -> None:
        async with http.stream(
            "POST", edges[1].mcp_url(INTEGRATION), headers=listen_headers, json=listen
        ) as s:
            assert s.status_code == 200
            async for line in s.aiter_lines():
                listening.set()
                if line.startswith("data:") and "notifications/resources/updated" in line:
                    assert json.loads(line[5:])["params"]["uri"] == "upstream://greeting"
                    heard.set()
                    return

    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with (
            httpx.AsyncClient(timeout=30) as raw,
            httpx.AsyncClient(transport=balancer, headers=headers, timeout=30) as http,
            Client(streamable_http_client(edges[0].mcp_url(INTEGRATION), http_client=http)) as client,
        ):
            follower = asyncio.create_task(follow(raw))
            try:
                async with asyncio.timeout(WAIT):
                    await listening.wait()
                    # A first call through each replica opens its watch of the upstream (listen streams
                    # open asynchronously): touch the greeting until the subscriber hears it.
                    while not heard.is_set():
                        await client.call_tool("up_touch", {"uri": "upstream://greeting"})
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(heard.wait(), 1.0)
            finally:
                follower.cancel()
                await asyncio.gather(follower, return_exceptions=True)
        assert await asked.get() == ("src_up", "upstream://greeting")
    finally:
        await registry.close()


def session_era_replica(nats_url: str, control: ControlPlane) -> EdgeHarness:
    """A replica whose source runner speaks only the 2025 session era to upstreams (their questions
    then come as server-to-client requests on the call's stream), with the deployment's shared secret."""
    runner = McpSourceRunner(allow_private_targets=True, eras=("session",))
    edge = EdgeHarness(
        nats_url, control, runners={"mcp": runner}, allow_private_http_targets=True, secret_key="s" * 32
    )
    edge.start()
    return edge


@pytest.fixture(scope="module")
def session_era_pair(nats_url: str, control: ControlPlane) -> Iterator[list[EdgeHarness]]:
    replicas = [session_era_replica(nats_url, control) for _ in range(2)]
    try:
        yield replicas
    finally:
        for edge in replicas:
            edge.stop()


async def test_a_session_era_upstream_asks_a_2025_client_through_the_edge(
    session_era_pair: list[EdgeHarness],
) -> None:
    seen = Seen()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx.AsyncClient(headers=headers, timeout=30) as http,
        Client(
            streamable_http_client(session_era_pair[0].mcp_url(INTEGRATION), http_client=http),
            mode="legacy",
            elicitation_callback=seen.on_elicitation,
        ) as client,
    ):
        assert texts(await client.call_tool("up_ask_name", {})) == ["Hello, Ada!"]
        assert seen.elicited == ["What is your name?"]
        counted = await client.call_tool("up_count", {"steps": 2}, progress_callback=seen.on_progress)
        assert texts(counted) == ["counted to 2"] and seen.progress == [1, 2]


async def test_a_session_era_upstream_asks_a_2026_client_whose_retries_go_to_the_other_replica(
    session_era_pair: list[EdgeHarness],
) -> None:
    """The upstream's open request is parked on the replica that sent it; the 2026 client gets its
    question as input_required and retries on the other replica, which hands the answer over."""
    asked: list[str] = []

    async def answer(context: ClientRequestContext, params: Any) -> types.ElicitResult:
        asked.append(params.message)
        content = {"name": "Ada"} if "name" in params.message else {"colour": "teal"}
        return types.ElicitResult(action="accept", content=content)

    balancer = RoundRobin([edge.url for edge in session_era_pair], rotate_on=frozenset({"tools/call"}))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx.AsyncClient(transport=balancer, headers=headers, timeout=30) as http,
        Client(
            streamable_http_client(session_era_pair[0].mcp_url(INTEGRATION), http_client=http),
            elicitation_callback=answer,
        ) as client,
    ):
        assert client.protocol_version == "2026-07-28"
        assert texts(await client.call_tool("up_ask_name", {})) == ["Hello, Ada!"]
        # Two questions, one after the other: three requests, the last back on the holding replica.
        assert texts(await client.call_tool("up_ask_twice", {})) == ["Ada likes teal"]
        counted = await client.call_tool("up_count", {"steps": 2})
        assert texts(counted) == ["counted to 2"]
    assert asked == ["What is your name?", "What is your name?", "Which colour?"]
    calls = [(replica, retry) for replica, method, retry in balancer.served if method == "tools/call"]
    assert calls == [(0, False), (1, True), (0, False), (1, True), (0, True), (1, False)]


async def _call(
    http: httpx.AsyncClient,
    edge: EdgeHarness,
    name: str,
    extra: dict[str, Any] | None = None,
    integration: str = INTEGRATION,
) -> dict[str, Any]:
    """A raw 2026-07-28 tools/call (a client that can elicit); the JSON-RPC response."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "authorization": f"Bearer {TOKEN}",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": name,
    }
    params = {"name": name, "arguments": {}, "_meta": meta, **(extra or {})}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    answered = await http.post(edge.mcp_url(integration), headers=headers, json=body)
    assert answered.status_code == 200
    message: dict[str, Any] = answered.json()
    return message


def _answered(key: str, name: str, state: str) -> dict[str, Any]:
    return {
        "inputResponses": {key: {"action": "accept", "content": {"name": name}}},
        "requestState": state,
    }


async def test_a_parked_calls_state_is_refused_when_tampered_or_foreign(
    session_era_pair: list[EdgeHarness],
) -> None:
    first, second = session_era_pair
    async with httpx.AsyncClient(timeout=WAIT) as http:
        asked = (await _call(http, first, "up_ask_name"))["result"]
        assert asked["resultType"] == "input_required"
        [(key, question)] = asked["inputRequests"].items()
        assert key == "elicit-1" and question["method"] == "elicitation/create"
        assert question["params"]["message"] == "What is your name?"
        state = asked["requestState"]
        for forged, integration in (
            (state + "x", INTEGRATION),
            (state[:-4], INTEGRATION),
            (state, OTHER_INTEGRATION),  # sealed for another integration (and its principal)
        ):
            refused = await _call(http, second, "up_ask_name", _answered(key, "Eve", forged), integration)
            assert refused["error"]["code"] == -32602 and "requestState" in refused["error"]["message"]
        # The genuine state still works after those attempts, on either replica.
        done = (await _call(http, second, "up_ask_name", _answered(key, "Eve", state)))["result"]
        assert done["content"] == [{"type": "text", "text": "Hello, Eve!"}]
        # The call is over: its state leads nowhere now (a tool error saying to call again).
        again = (await _call(http, first, "up_ask_name", _answered(key, "Eve", state)))["result"]
        assert again["isError"] and "call the tool again" in again["content"][0]["text"]


async def test_a_retry_after_the_holding_replica_stopped_is_a_clear_error(
    session_era_pair: list[EdgeHarness], nats_url: str, control: ControlPlane
) -> None:
    holder = session_era_replica(nats_url, control)
    try:
        async with httpx.AsyncClient(timeout=WAIT) as http:
            asked = (await _call(http, holder, "up_ask_name"))["result"]
            assert asked["resultType"] == "input_required"
            holder.stop()
            retry = _answered("elicit-1", "Ada", asked["requestState"])
            gone = (await _call(http, session_era_pair[0], "up_ask_name", retry))["result"]
        assert gone["isError"]
        assert (
            gone["content"][0]["text"]
            == "the edge replica holding this call has stopped; call the tool again"
        )
    finally:
        holder.stop()
        # A uvicorn server that stops sets sse-starlette's process-wide "exiting" flag, which would end
        # every SSE answer of the upstream (served in this process) before its first event.
        AppStatus.should_exit = False


async def test_a_parked_call_whose_client_never_retries_is_cancelled_upstream(
    session_era_pair: list[EdgeHarness], upstream: UpstreamServer
) -> None:
    cancelled = upstream.server.asks_cancelled  # type: ignore[attr-defined]
    cancelled.clear()
    async with httpx.AsyncClient(timeout=WAIT) as http:
        # short_ask: the upstream's ask_twice through a source whose timeout is one second.
        asked = (await _call(http, session_era_pair[0], "short_ask"))["result"]
        assert asked["resultType"] == "input_required"
        assert await asyncio.to_thread(cancelled.wait, WAIT)  # its window ended: cancelled upstream
        late = await _call(
            http, session_era_pair[1], "short_ask", _answered("elicit-1", "Ada", asked["requestState"])
        )
        assert late["error"]["code"] == -32602 and "expired" in late["error"]["message"]
