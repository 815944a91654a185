"""The official SDK clients in their 2026-07-28 modes against the whole stack with two edge replicas
behind a round-robin "balancer" (every request goes to the next replica): the Python SDK 2.x in its
default mode settles on 2026-07-28 with no session; the TypeScript SDK v2 (``versionNegotiation:
auto``) does too. A worker's questions (elicitation, sampling, roots) are answered by the clients'
retries, which land on the other replica and continue the same handler."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mcp.types as types
import pytest
from mcp.client import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client

from everything_worker import node_tools
from skillrelay_devstack.everything import Deployment
from skillrelay_devstack.testing import EverythingStarter

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
TS_CLIENT = Path(__file__).parent / "ts_client"


@pytest.fixture(scope="module")
def deployment(start_everything: EverythingStarter) -> Iterator[Deployment]:
    with start_everything("sdk-clients-2026", edge_replicas=2) as running:
        yield running


class RoundRobin(httpx.AsyncBaseTransport):
    """Sends each request to the next edge replica, and notes which replica got which request."""

    def __init__(self, replicas: list[str]) -> None:
        self._replicas = [httpx.URL(url) for url in replicas]
        self._inner = httpx.AsyncHTTPTransport()
        self._next = 0
        self.served: list[tuple[int, str | None, bool, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        replica = self._next % len(self._replicas)
        self._next += 1
        target = self._replicas[replica]
        body: dict[str, Any] = {}
        if request.method == "POST":
            try:
                body = json.loads(request.content or b"{}")
            except ValueError:
                body = {}
        params = body.get("params") if isinstance(body.get("params"), dict) else {}
        self.served.append(
            (
                replica,
                body.get("method"),
                "inputResponses" in (params or {}),
                request.headers.get("mcp-session-id"),
            )
        )
        request.url = request.url.copy_with(host=target.host, port=target.port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def on_elicitation(context: ClientRequestContext, params: Any) -> types.ElicitResult:
    message = params.message
    content = (
        {"name": "Ada"}
        if "name" in message
        else {"context": "docs"}
        if "context" in message
        else {"color": "teal"}
    )
    return types.ElicitResult(action="accept", content=content)


async def on_sampling(
    context: ClientRequestContext, params: types.CreateMessageRequestParams
) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="Hello there"),
        model="m",
        stop_reason="endTurn",
    )


async def on_roots(context: ClientRequestContext) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///workspace", name="workspace")])


def texts(result: types.CallToolResult) -> list[str]:
    return [block.text for block in result.content if isinstance(block, types.TextContent)]


async def test_python_sdk_default_mode_settles_on_2026_and_answers_on_the_other_replica(
    deployment: Deployment,
) -> None:
    balancer = RoundRobin([deployment.endpoint(0), deployment.endpoint(1)])
    headers = {"Authorization": f"Bearer {deployment.registration.access_token}"}
    async with (
        httpx.AsyncClient(transport=balancer, headers=headers, timeout=30) as http,
        Client(
            streamable_http_client(deployment.endpoint(0), http_client=http),
            elicitation_callback=on_elicitation,
            sampling_callback=on_sampling,
            list_roots_callback=on_roots,
        ) as client,
    ):
        assert client.protocol_version == "2026-07-28"
        listed = await client.list_tools()
        assert "test_input_required_result_multi_round" in {tool.name for tool in listed.tools}
        assert texts(await client.call_tool("test_simple_text", {})) == [
            "This is a simple text response for testing."
        ]
        assert texts(await client.call_tool("test_input_required_result_multi_round", {})) == [
            "Ada likes teal"
        ]
        three = await client.call_tool("test_input_required_result_multiple_inputs", {})
        assert texts(three) == ["Hello there Ada (1 roots)"]
        prompt = await client.get_prompt("test_input_required_result_prompt", {})
        assert prompt.messages[0].content.text == "Use this context: docs"  # type: ignore[union-attr]
    calls = [entry for entry in balancer.served if entry[1] == "tools/call"]
    retries = [entry for entry in calls if entry[2]]
    assert len(retries) >= 3  # two rounds of one tool, one round of the other
    # Each retry reached the other replica than the request before it: the handler went on there.
    assert {replica for replica, *_ in retries} == {0, 1}
    assert all(session is None for *_, session in balancer.served)  # never a session


def test_typescript_sdk_v2_in_both_eras(deployment: Deployment, tmp_path: Path) -> None:
    node_tools.install(TS_CLIENT)
    endpoints = [deployment.endpoint(0), deployment.endpoint(1)]
    token = deployment.registration.access_token
    seen: dict[str, dict[str, Any]] = {}
    for mode in ("auto", "legacy"):
        run = subprocess.run(
            ["node", str(TS_CLIENT / "client.mjs"), *endpoints, token, mode],
            env=node_tools.node_env(),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
        seen[mode] = json.loads(run.stdout.strip().splitlines()[-1])
    modern, legacy = seen["auto"], seen["legacy"]
    assert modern["protocolVersion"] == "2026-07-28" and legacy["protocolVersion"] == "2025-11-25"
    for answer in (modern, legacy):
        assert answer["simple"] == [{"type": "text", "text": "This is a simple text response for testing."}]
        assert answer["rounds"] == [{"type": "text", "text": "Ada likes teal"}]
        assert answer["elicited"] == ["Step 1: What is your name?", "Step 2: What is your favorite color?"]
        assert answer["resource"][0]["text"] == "This is the content of the static text resource."
    assert modern["served"][0][1] == "server/discover"
    retries = [(replica, method) for replica, method, answered in modern["served"] if answered]
    assert [method for _, method in retries] == ["tools/call", "tools/call"]
    assert {replica for replica, _ in retries} == {0, 1}  # answered on both replicas in turn
    assert all(method != "initialize" for _, method, _ in modern["served"])
    assert legacy["served"][0][1] == "initialize"
