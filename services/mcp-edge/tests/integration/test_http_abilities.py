"""``http`` abilities against a local HTTP server (the edge runs with allow_private_http_targets)."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import msgspec
import pytest

from skillrelay_devstack.edge import (
    TOKEN,
    ControlPlane,
    EdgeHarness,
    ability,
    demo_skillset,
    initialize_request,
)
from skillrelay_devstack.embedded import free_port

SEEN: list[dict[str, Any]] = []
RELEASE = threading.Event()
HELD = threading.Event()  # the upstream holds a request (``/held``)
HUNG_UP = threading.Event()  # and then saw the edge close that connection


class Upstream(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        return None

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        payload = json.loads(self.rfile.read(length) or b"{}")
        SEEN.append(
            {
                "path": self.path,
                "body": payload,
                "host": self.headers.get("Host"),
                "auth": self.headers.get("X-Key"),
            }
        )
        if self.path == "/json":
            self._answer(200, json.dumps({"sum": payload["a"] + payload["b"]}).encode())
        elif self.path == "/text":
            self._answer(200, b"plain words", "text/plain")
        elif self.path == "/fail":
            self._answer(502, b"upstream broke")
        elif self.path == "/held":
            HELD.set()
            while not RELEASE.is_set():
                readable, _, _ = select.select([self.connection], [], [], 0.05)
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    HUNG_UP.set()
                    return
        elif self.path == "/slow":
            RELEASE.wait(5)
            self._answer(200, b"{}")
        else:
            self._answer(404, b"")


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    RELEASE.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def http_edge(nats_url: str, upstream: int) -> Iterator[EdgeHarness]:
    base = f"http://127.0.0.1:{upstream}"
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
    skillset = demo_skillset("skillset_http")
    extra = [
        ability(
            "add",
            {"type": "http", "url": f"{base}/json", "headers": {"X-Key": "k", "host": "evil.example.com"}},
            inputSchema=schema,
            outputSchema={"type": "object", "properties": {"sum": {"type": "integer"}}},
        ),
        ability("words", {"type": "http", "url": f"{base}/text"}),
        ability("broken", {"type": "http", "url": f"{base}/fail"}),
        ability("slow", {"type": "http", "url": f"{base}/slow", "timeoutMs": 300}),
        ability("held", {"type": "http", "url": f"{base}/held", "timeoutMs": 30_000}),
    ]
    control = ControlPlane()
    control.add("mcpserver_http", msgspec.structs.replace(skillset, abilities=[*skillset.abilities, *extra]))
    harness = EdgeHarness(nats_url, control, allow_private_http_targets=True)
    harness.start()
    yield harness
    harness.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


async def _call(client: httpx.AsyncClient, edge: EdgeHarness, tool: str, arguments: dict[str, Any]) -> Any:
    response = await client.post(
        edge.mcp_url("mcpserver_http"),
        headers={"accept": "application/json, text/event-stream", "authorization": f"Bearer {TOKEN}"},
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["result"]


async def test_json_answers_become_text_and_structured_content(
    http_edge: EdgeHarness, client: httpx.AsyncClient
) -> None:
    result = await _call(client, http_edge, "add", {"a": 2, "b": 3})
    assert result["structuredContent"] == {"sum": 5}
    assert json.loads(result["content"][0]["text"]) == {"sum": 5}
    sent = SEEN[-1]
    assert sent["body"] == {"a": 2, "b": 3} and sent["auth"] == "k"
    assert sent["host"].startswith("127.0.0.1:")


async def test_text_answers(http_edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    result = await _call(client, http_edge, "words", {})
    assert result == {"content": [{"type": "text", "text": "plain words"}]}


async def test_failures_and_timeouts_are_is_error_results(
    http_edge: EdgeHarness, client: httpx.AsyncClient
) -> None:
    broken = await _call(client, http_edge, "broken", {})
    assert broken["isError"] is True and "502" in broken["content"][0]["text"]
    slow = await _call(client, http_edge, "slow", {})
    assert slow["isError"] is True and "timed out" in slow["content"][0]["text"]


async def test_a_cancelled_call_hangs_up_on_the_upstream(
    http_edge: EdgeHarness, client: httpx.AsyncClient
) -> None:
    url = http_edge.mcp_url("mcpserver_http")
    headers = {"accept": "application/json, text/event-stream", "authorization": f"Bearer {TOKEN}"}
    opened = await client.post(url, headers=headers, json=initialize_request())
    headers = {
        **headers,
        "mcp-session-id": opened.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-11-25",
    }
    call = {
        "jsonrpc": "2.0",
        "id": 9,
        "method": "tools/call",
        "params": {"name": "held", "arguments": {}, "_meta": {"progressToken": "p"}},
    }
    pending = asyncio.ensure_future(client.post(url, headers=headers, json=call))
    await asyncio.wait_for(asyncio.to_thread(HELD.wait, 10), 10)
    notice = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}}
    assert (await client.post(url, headers=headers, json=notice)).status_code == 202
    await asyncio.wait_for(asyncio.to_thread(HUNG_UP.wait, 10), 10)
    answer = await asyncio.wait_for(pending, 10)
    # MCP: a cancelled request gets no response; its stream just ends.
    assert '"result"' not in answer.text, answer.text
