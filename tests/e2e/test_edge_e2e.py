"""The MCP endpoint through the whole stack (every service a process): static abilities, resources and
prompts defined over REST, and the edge following registry changes live: its caches are invalidated
and open sessions get ``*/list_changed`` and ``notifications/resources/updated`` on their GET stream."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from skillrelay_devstack.raw_mcp import initialize_request
from skillrelay_devstack.stack import Stack
from skillrelay_devstack.testing import StackStarter

pytestmark = pytest.mark.slow

ACCEPT = "application/json, text/event-stream"


@pytest.fixture(scope="module")
def stack(start_stack: StackStarter) -> Iterator[Stack]:
    with start_stack("edge-stack") as running:
        yield running


class Deployment:
    def __init__(self, stack: Stack) -> None:
        self.registry = httpx.Client(base_url=stack.registry_url, timeout=10)
        user = self.registry.post(
            "/api/v1/user/create",
            json={"name": "edge-e2e"},
            headers={"authorization": f"Bearer {stack.admin_token}"},
        )
        assert user.status_code in (200, 201), user.text
        self.registry.headers["authorization"] = f"Bearer {user.json()['apiKey']}"
        self.skillset = self.post("/api/v1/skillset/create", {"name": "edge", "description": "edge e2e"})[
            "id"
        ]
        self.post(
            f"/api/v1/skillset/{self.skillset}/ability/create",
            {
                "name": "greet",
                "description": "Greets someone",
                "inputSchema": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"],
                },
                "handler": {"type": "static", "content": [{"type": "text", "text": "Hello {{name}}!"}]},
            },
        )
        self.resource = self.post(
            f"/api/v1/skillset/{self.skillset}/resource/create",
            {
                "name": "note",
                "description": "A note",
                "uri": "note://1",
                "mimeType": "text/plain",
                "text": "first",
            },
        )["id"]
        self.post(
            f"/api/v1/skillset/{self.skillset}/prompt/create",
            {
                "name": "ask",
                "description": "Asks about a topic",
                "arguments": [{"name": "topic", "required": True}],
                "messages": [
                    {"role": "user", "content": {"type": "text", "text": "Tell me about {{topic}}"}}
                ],
            },
        )
        integration = self.post(
            "/api/v1/integration/mcpserver/create",
            {"name": "edge", "description": "d", "skillsetId": self.skillset},
        )
        self.integration = integration["id"]
        self.url = integration["endpoint"]
        self.token = integration["accessToken"]

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.registry.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def headers(self, session: str | None = None) -> dict[str, str]:
        sent = {"accept": ACCEPT, "content-type": "application/json", "authorization": f"Bearer {self.token}"}
        if session:
            sent["mcp-session-id"] = session
            sent["mcp-protocol-version"] = "2025-11-25"
        return sent


@pytest.fixture(scope="module")
def deployment(stack: Stack) -> Deployment:
    return Deployment(stack)


def _rpc(client: httpx.Client, deployment: Deployment, session: str, method: str, params: Any = None) -> Any:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        body["params"] = params
    response = client.post(deployment.url, headers=deployment.headers(session), json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _session(client: httpx.Client, deployment: Deployment) -> str:
    response = client.post(deployment.url, headers=deployment.headers(), json=initialize_request("e2e"))
    assert response.status_code == 200, response.text
    return response.headers["mcp-session-id"]


def _listen(deployment: Deployment, session: str, found: queue.Queue[Any], opened: threading.Event) -> None:
    headers = {**deployment.headers(session), "accept": "text/event-stream"}
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=30)) as client,
        client.stream("GET", deployment.url, headers=headers) as stream,
    ):
        for line in stream.iter_lines():
            opened.set()
            if line.startswith("data: "):
                found.put(json.loads(line[6:]))
    found.put(None)  # the stream ended


def _next_methods(found: queue.Queue[Any], count: int) -> list[str]:
    return [found.get(timeout=15)["method"] for _ in range(count)]


def test_static_abilities_resources_and_prompts(deployment: Deployment) -> None:
    with httpx.Client(timeout=10) as client:
        session = _session(client, deployment)
        greeting = _rpc(
            client, deployment, session, "tools/call", {"name": "greet", "arguments": {"name": "Ada"}}
        )
        assert greeting["result"]["content"] == [{"type": "text", "text": "Hello Ada!"}]
        note = _rpc(client, deployment, session, "resources/read", {"uri": "note://1"})
        assert note["result"]["contents"][0]["text"] == "first"
        prompt = _rpc(
            client, deployment, session, "prompts/get", {"name": "ask", "arguments": {"topic": "NATS"}}
        )
        assert prompt["result"]["messages"][0]["content"]["text"] == "Tell me about NATS"


def test_changes_reach_open_sessions_and_deletion_ends_them(deployment: Deployment) -> None:
    with httpx.Client(timeout=10) as client:
        session = _session(client, deployment)
        assert _rpc(client, deployment, session, "resources/subscribe", {"uri": "note://1"})["result"] == {}
        found: queue.Queue[Any] = queue.Queue()
        opened = threading.Event()
        listener = threading.Thread(target=_listen, args=(deployment, session, found, opened), daemon=True)
        listener.start()
        assert opened.wait(15)

        deployment.post(
            f"/api/v1/skillset/{deployment.skillset}/resource/{deployment.resource}/update",
            {"text": "second"},
        )
        assert _next_methods(found, 2) == [
            "notifications/resources/list_changed",
            "notifications/resources/updated",
        ]
        note = _rpc(client, deployment, session, "resources/read", {"uri": "note://1"})
        assert note["result"]["contents"][0]["text"] == "second"

        deployment.post(
            f"/api/v1/skillset/{deployment.skillset}/ability/create",
            {
                "name": "later",
                "description": "Added later",
                "handler": {"type": "static", "content": [{"type": "text", "text": "hi"}]},
            },
        )
        assert _next_methods(found, 1) == ["notifications/tools/list_changed"]
        tools = _rpc(client, deployment, session, "tools/list")["result"]["tools"]
        assert {tool["name"] for tool in tools} == {"greet", "later"}

        deployment.post(f"/api/v1/integration/mcpserver/{deployment.integration}/delete", {})
        assert found.get(timeout=15) is None  # the GET stream was closed
        listener.join(15)
        gone = client.post(
            deployment.url,
            headers=deployment.headers(session),
            json={"jsonrpc": "2.0", "id": 2, "method": "ping"},
        )
        assert gone.status_code in (401, 404)
