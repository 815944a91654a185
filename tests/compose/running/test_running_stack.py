"""docker-compose.yml really run (``make test-compose``): every container healthy, then the stack driven
only through the proxy's published port as a user would — REST set-up, ``tools/call`` with the
official MCP Python SDK client, a resumed SSE stream, token rotation seen at once by both edges — and
faults: an edge killed under load, a NATS node killed, PostgreSQL restarted.

The tests run in file order against one compose project; each fault test leaves the stack healthy."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import mcp.types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from skillrelay_devstack.raw_mcp import resume_a_broken_call

from .conftest import (
    Compose,
    Integration,
    headers,
    jsonrpc_result,
    open_session,
    rest,
)

pytestmark = [pytest.mark.compose, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[3]
WAIT = 30.0
GREETING = "Hello from a container"
EDGES = ("edge-1", "edge-2")


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set: run `make test-compose`, which starts its own Docker engine")
    return value


@pytest.fixture(scope="module")
def compose() -> Iterator[Compose]:
    stack = Compose(binary=_required("SKILLRELAY_COMPOSE_BIN"), root=str(ROOT))
    _required("DOCKER_HOST")
    logs = os.environ.get("SKILLRELAY_COMPOSE_LOGS")
    try:
        stack.run("up", "--detach", "--no-build", "--wait", "--wait-timeout", "900", timeout=960)
        yield stack
    finally:
        if logs:
            with contextlib.suppress(Exception):
                Path(logs).write_text(stack.run("logs", "--no-color", "--timestamps", timeout=120))
        if not os.environ.get("SKILLRELAY_COMPOSE_KEEP"):  # kept up while working on these tests
            stack.run("down", "--volumes", "--timeout", "20", timeout=300)


@pytest.fixture(scope="module")
def origin(compose: Compose) -> str:
    """The public origin, once the published port answers: ``--wait`` saw the proxy healthy from
    inside its container, the host's path to it (docker-proxy → the proxy's address) is checked here,
    and when it never works the failure says what the host and the proxy saw."""
    public = os.environ["SKILLRELAY_PUBLIC_ORIGIN"]
    deadline = time.monotonic() + 90.0
    while True:
        try:
            answer = httpx.get(f"{public}/health", timeout=5.0)
            if answer.status_code == 200:
                return public
            problem = f"{answer.status_code} {answer.text[:200]}"
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            pytest.fail(f"{public}/health through the published port: {problem}\n{_reachability(compose)}")
        time.sleep(2.0)


def _reachability(compose: Compose) -> str:
    """What explains a published port that does not answer: the host's routes and listeners, the
    proxy's address, what the proxy answers from inside, and its last log lines."""
    steps = {
        "host routes": ["ip", "-4", "route"],
        "host listeners": ["ss", "-ltnp"],
    }
    out = []
    for title, command in steps.items():
        with contextlib.suppress(Exception):
            done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
            out.append(f"--- {title}\n{done.stdout[-3000:]}")
    for title, args in {
        "proxy container": ("ps", "--all", "proxy"),
        "proxy from inside": ("exec", "-T", "proxy", "wget", "-q", "-O", "-", "http://127.0.0.1:80/health"),
        "proxy logs": ("logs", "--no-color", "--tail", "40", "proxy"),
    }.items():
        try:
            out.append(f"--- {title}\n{compose.run(*args, timeout=30)[-3000:]}")
        except Exception as exc:
            out.append(f"--- {title}: {exc}")
    return "\n".join(out)


@pytest.fixture(scope="module")
def client(origin: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=origin, timeout=WAIT) as http:
        yield http


@pytest.fixture(scope="module")
def integration(client: httpx.Client, origin: str) -> Integration:
    """A user (admin token), a skillset with a static ability and a worker ability, and an MCP server
    integration — all over REST through the proxy."""
    admin = os.environ["SKILLRELAY_ADMIN_TOKEN"]
    owner = rest(client, "POST", "/api/v1/user/create", admin, {"name": "compose-owner"})
    key = owner["apiKey"]
    skillset = rest(
        client, "POST", "/api/v1/skillset/create", key, {"name": "compose", "description": "compose test"}
    )
    skillset_id = skillset["id"]
    rest(
        client,
        "POST",
        f"/api/v1/skillset/{skillset_id}/ability/create",
        key,
        {
            "name": "greet",
            "description": "A static greeting",
            "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}}},
            "handler": {"type": "static", "content": [{"type": "text", "text": GREETING + ", {{name}}"}]},
        },
    )
    # Served by the example worker container (compose's worker listens on the subject "everything").
    rest(
        client,
        "POST",
        f"/api/v1/skillset/{skillset_id}/ability/create",
        key,
        {
            "name": "test_tool_with_progress",
            "description": "Progress notifications from the example worker",
            "inputSchema": {"type": "object", "properties": {}},
            "handler": {"type": "worker", "subject": "everything", "timeoutMs": 60_000},
        },
    )
    created = rest(
        client,
        "POST",
        "/api/v1/integration/mcpserver/create",
        key,
        {"name": "compose", "skillsetId": skillset_id, "sessionMode": "strict"},
    )
    assert created["endpoint"].startswith(origin + "/api/v1/integration/mcpserver/")
    return Integration(key, skillset_id, created["id"], created["endpoint"], created["accessToken"])


@pytest.fixture(scope="module")
def worker(compose: Compose, client: httpx.Client, integration: Integration) -> str:
    """The example worker as a container (compose's ``worker`` profile) with a worker credential of
    the integration's owner, created over REST; serving once a worker tool answers."""
    issued = rest(
        client, "POST", "/api/v1/worker/credential/create", integration.owner_key, {"name": "compose"}
    )
    assert issued["credential"].startswith("sr_worker_")
    compose.env["SKILLRELAY_WORKER_CREDENTIAL"] = issued["credential"]
    compose.env["COMPOSE_PROFILES"] = "worker"  # later ps/kill/down see the worker too
    compose.run("up", "--detach", "--no-build", "worker", timeout=300)
    session_id = open_session(client, integration.endpoint, integration.token)
    deadline = time.monotonic() + 120.0
    for request_id in itertools.count(100):
        answer = client.post(
            integration.endpoint,
            headers=headers(integration.token, session_id),
            json={
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {"name": "test_tool_with_progress", "arguments": {}},
            },
        )
        result = jsonrpc_result(answer, request_id).get("result") or {}
        if not result.get("isError") and result.get("content"):
            assert result["content"][0]["text"] == "done"
            return str(issued["id"])
        assert time.monotonic() < deadline, f"the worker container never served: {answer.text[:300]}"
        time.sleep(1.0)
    raise AssertionError("unreachable")


def _texts(result: types.CallToolResult) -> list[str]:
    return [block.text for block in result.content if isinstance(block, types.TextContent)]


def _greet(
    client: httpx.Client, integration: Integration, session_id: str, request_id: int, name: str
) -> httpx.Response:
    return client.post(
        integration.endpoint,
        headers=headers(integration.token, session_id),
        json={
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": "greet", "arguments": {"name": name}},
        },
    )


# --- up --------------------------------------------------------------------------------------------


def test_every_container_is_up_and_healthy(compose: Compose) -> None:
    rows = compose.services()
    expected = {
        "nats-1",
        "nats-2",
        "nats-3",
        "postgres",
        "sessions",
        "auth",
        "registry",
        *EDGES,
        "proxy",
    }
    assert set(rows) == expected
    for name, row in rows.items():
        assert row["State"] == "running", (name, row["Status"])
        # Every service has a health check; --wait waited for it. (The worker has its own profile: it
        # needs a worker credential, which exists only once the stack runs.)
        assert row["Health"] == "healthy", (name, row["Status"])
    # Only the proxy publishes a port, and only on loopback.
    published = {name: row.get("Publishers") or [] for name, row in rows.items()}
    exposed = {name: [p for p in ports if p.get("PublishedPort")] for name, ports in published.items()}
    assert {name for name, ports in exposed.items() if ports} == {"proxy"}
    assert {(p["URL"], p["TargetPort"]) for p in exposed["proxy"]} == {("127.0.0.1", 80)}


def test_the_public_origin_serves_every_service(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    metadata = client.get("/.well-known/oauth-authorization-server/oauth/nothing")
    assert metadata.status_code in (200, 404)  # answered by auth, not blocked by the proxy
    assert client.get("/metrics").status_code == 404  # Prometheus stays inside the network


# --- REST and MCP through the proxy ---------------------------------------------------------------------


async def test_tools_call_with_the_official_sdk_client(integration: Integration, worker: str) -> None:
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {integration.token}"}) as http,
        streamable_http_client(integration.endpoint, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await asyncio.wait_for(session.initialize(), WAIT)
        listed = await session.list_tools()
        assert {tool.name for tool in listed.tools} == {"greet", "test_tool_with_progress"}
        greeted = await session.call_tool("greet", {"name": "Ada"})
        assert _texts(greeted) == [f"{GREETING}, Ada"]
        progress: list[float] = []
        all_progress = asyncio.Event()

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)
            if len(progress) == 3:
                all_progress.set()

        # The worker container answers through NATS; its progress reaches this client through the proxy.
        worked = await session.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
        assert worked.is_error is not True
        # The SDK may run callbacks after it resolved the call.
        await asyncio.wait_for(all_progress.wait(), WAIT)
        assert progress == [0, 50, 100]


def test_a_broken_stream_resumes_with_last_event_id(
    client: httpx.Client, integration: Integration, worker: str
) -> None:
    session_id = open_session(client, integration.endpoint, integration.token)
    # The connection is gone mid-call; the proxy may send the resumption to either edge.
    seen = resume_a_broken_call(
        client, integration.endpoint, integration.endpoint, headers(integration.token, session_id)
    )
    progress = [d["params"]["progress"] for d in seen if d.get("method") == "notifications/progress"]
    assert progress == [50, 100]
    assert seen[-1]["result"]["content"][0]["text"] == "p9"


_EDGE_PROBE = """
import json, sys, urllib.error, urllib.request
token, host, path = sys.argv[1:4]
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}}})
request = urllib.request.Request("http://127.0.0.1:8080" + path, data=body.encode(), method="POST", headers={
    "Host": host, "Authorization": "Bearer " + token, "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"})
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        print(response.status)
except urllib.error.HTTPError as error:
    print(error.code)
"""


def _status_at_edge(compose: Compose, edge: str, integration: Integration, token: str) -> int:
    """The status one edge container answers on its own port (bypassing the proxy)."""
    public = httpx.URL(integration.endpoint)
    host = f"{public.host}:{public.port}"
    return int(compose.python(edge, _EDGE_PROBE, token, host, public.path).strip())


def test_a_rotated_token_is_refused_at_once_by_both_edges(
    compose: Compose, client: httpx.Client, integration: Integration
) -> None:
    old = integration.token
    for edge in EDGES:  # both edges know (and have cached) the current token
        assert _status_at_edge(compose, edge, integration, old) == 200
    rotated = rest(
        client,
        "POST",
        f"/api/v1/integration/mcpserver/{integration.integration_id}/token/rotate",
        integration.owner_key,
        {},
    )
    new = rotated["accessToken"]
    assert new != old
    # rotate answers only after every live edge dropped the old token: no grace period anywhere.
    for edge in EDGES:
        assert _status_at_edge(compose, edge, integration, old) == 401
        assert _status_at_edge(compose, edge, integration, new) == 200
    for _ in range(6):  # round robin: each edge several times through the proxy
        refused = client.post(
            integration.endpoint, headers=headers(old), json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
        )
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    integration.token = new
    session_id = open_session(client, integration.endpoint, new)
    answer = jsonrpc_result(_greet(client, integration, session_id, 5, "Grace"), 5)
    assert answer["result"]["content"][0]["text"] == f"{GREETING}, Grace"


# --- faults ---------------------------------------------------------------------------------------


@dataclass
class Load:
    """Clients calling ``greet`` in a loop through the proxy, each in its own MCP session, until
    stopped. Every answer is recorded: (client, call number, status or error, correlation id)."""

    integration: Integration
    origin: str
    clients: int = 4
    results: list[tuple[int, int, str, str | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        for number in range(self.clients):
            thread = threading.Thread(target=self._run, args=(number,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(WAIT * 2)

    def _run(self, number: int) -> None:
        try:
            self._calls(number)
        except Exception as error:  # recorded (and so failing the test), never lost in a thread
            with self._lock:
                self.results.append((number, 0, f"crashed:{error!r}", None))

    def _calls(self, number: int) -> None:
        with httpx.Client(timeout=WAIT) as http:
            session_id = open_session(http, self.integration.endpoint, self.integration.token)
            for call in itertools.count(1):
                if self._stop.is_set():
                    return
                try:
                    response = _greet(http, self.integration, session_id, call, f"c{number}-{call}")
                    outcome = str(response.status_code)
                    if response.status_code == 200:
                        text = jsonrpc_result(response, call)["result"]["content"][0]["text"]
                        outcome = "ok" if text == f"{GREETING}, c{number}-{call}" else f"wrong:{text}"
                    correlation = response.headers.get("skillrelay-correlation-id")
                except httpx.HTTPError as error:
                    outcome, correlation = f"error:{type(error).__name__}", None
                with self._lock:
                    self.results.append((number, call, outcome, correlation))

    def mark(self) -> int:
        with self._lock:
            return len(self.results)

    def since(self, mark: int) -> list[tuple[int, int, str, str | None]]:
        with self._lock:
            return list(self.results[mark:])

    def wait_for_successes(self, mark: int, each: int, timeout: float = 120.0) -> None:
        """Until every client has ``each`` successful calls recorded after ``mark``."""
        deadline = time.monotonic() + timeout
        while True:
            recent = self.since(mark)
            done = [sum(1 for c, _, o, _ in recent if c == n and o == "ok") for n in range(self.clients)]
            if min(done) >= each:
                return
            crashed = [o for _, _, o, _ in recent if o.startswith("crashed:")]
            if crashed or time.monotonic() > deadline:
                raise TimeoutError(f"successful calls per client since the fault: {done} {crashed[:1]}")
            time.sleep(0.2)


def test_killing_an_edge_under_load_leaves_clients_working_through_the_other(
    compose: Compose, integration: Integration, origin: str
) -> None:
    with Load(integration, origin) as load:
        load.wait_for_successes(0, 5)
        before_kill = load.mark()
        compose.run("kill", "edge-1")
        load.wait_for_successes(before_kill, 20)
        compose.run("start", "edge-1")
        compose.wait_healthy("edge-1")
        after_restart = load.mark()
        load.wait_for_successes(after_restart, 10)
    during = load.since(before_kill)
    failed = [(c, n, o) for c, n, o, _ in during if o != "ok"]
    print(f"edge-1 killed: {len(during)} calls from the kill on, failed: {failed}")
    # At most the one call each client had in flight on the killed edge fails, and only as the proxy's
    # 502 (sessions are shared: no 404 "unknown session", no wrong answers, no client timeouts).
    assert len(failed) <= load.clients, failed
    assert all(outcome == "502" for _, _, outcome in failed), failed
    assert all(o == "ok" for c, n, o, _ in load.results[:before_kill]), "failures before any fault"


_AUDIT_STREAM_PROBE = """
import asyncio, json, os
import nats
async def main():
    servers = os.environ["SKILLRELAY_NATS_URL"].split(",")
    nc = await nats.connect(servers, connect_timeout=5)
    info = await nc.jetstream().stream_info("AUDIT")
    print(json.dumps({"replicas": info.config.num_replicas, "leader": info.cluster.leader,
        "peers": sorted((p.name, bool(p.current)) for p in info.cluster.replicas or []),
        "messages": info.state.messages}))
    await nc.close()
asyncio.run(main())
"""


def _audit_stream(compose: Compose) -> dict[str, Any]:
    """The AUDIT stream's replication as a service container sees it."""
    printed = compose.python("registry", _AUDIT_STREAM_PROBE).strip().splitlines()[-1]
    answer: dict[str, Any] = json.loads(printed)
    return answer


def _audited_correlation_ids(client: httpx.Client, integration: Integration) -> set[str]:
    found: set[str] = set()
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"take": 100, "kind": "tool.call"}
        if cursor:
            params["cursor"] = cursor
        page = client.get(
            f"/api/v1/integration/mcpserver/{integration.integration_id}/audit/list",
            params=params,
            headers={"Authorization": f"Bearer {integration.owner_key}"},
        )
        assert page.status_code == 200, page.text
        body = page.json()
        for record in body["items"]:
            data = record.get("data") or {}
            correlation = data.get("correlation_id") or data.get("correlationId")
            if correlation:
                found.add(correlation)
        cursor = body.get("cursor")
        if not cursor or not body["items"]:
            return found


def test_killing_a_nats_node_loses_no_acknowledged_audit_record(
    compose: Compose, client: httpx.Client, integration: Integration, origin: str
) -> None:
    stream = _audit_stream(compose)
    assert stream["replicas"] == 3
    with Load(integration, origin) as load:
        load.wait_for_successes(0, 5)
        before_kill = load.mark()
        compose.run("kill", "nats-2")
        # The cluster carries on with two of three nodes: every client gets answers again.
        load.wait_for_successes(before_kill, 20)
        compose.run("start", "nats-2")
        compose.wait_healthy("nats-2")
        after_restart = load.mark()
        load.wait_for_successes(after_restart, 5)
    answered = {corr for _, _, outcome, corr in load.results if outcome == "ok" and corr}
    assert len(answered) >= 30
    failed = [(c, n, o) for c, n, o, _ in load.since(before_kill) if o != "ok"]
    print(f"nats-2 killed: {len(load.since(before_kill))} calls from the kill on, failed: {failed}")
    # Calls caught by the failover may get a clean 503, never a wrong answer or a client timeout.
    assert all(o in {"502", "503"} for _, _, o in failed), failed
    # Every call a client got an answer for was audited, and the record was kept through the failover.
    deadline = time.monotonic() + 60.0
    while not answered <= (audited := _audited_correlation_ids(client, integration)):
        assert time.monotonic() < deadline, f"{len(answered - audited)} answered calls have no audit record"
        time.sleep(1.0)
    # The restarted node caught up: all three replicas current again.
    deadline = time.monotonic() + 60.0
    while True:
        stream = _audit_stream(compose)
        if len(stream["peers"]) == 2 and all(current for _, current in stream["peers"]):
            break
        assert time.monotonic() < deadline, stream
        time.sleep(1.0)
    assert stream["messages"] > 0


def test_restarting_postgresql_loses_no_acknowledged_write(
    compose: Compose, client: httpx.Client, integration: Integration
) -> None:
    acknowledged: list[str] = []
    refused: list[int] = []
    stop = threading.Event()

    def write() -> None:
        with httpx.Client(base_url=client.base_url, timeout=WAIT) as http:
            while not stop.is_set():
                try:
                    created = http.post(
                        "/api/v1/skillset/create",
                        json={"name": f"pg-{uuid.uuid4().hex[:12]}"},
                        headers={"Authorization": f"Bearer {integration.owner_key}"},
                    )
                except httpx.HTTPError:
                    refused.append(0)
                    continue
                if created.status_code == 201 or created.status_code == 200:
                    acknowledged.append(created.json()["id"])
                else:
                    refused.append(created.status_code)
                    time.sleep(0.1)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        deadline = time.monotonic() + WAIT
        while len(acknowledged) < 5:
            assert time.monotonic() < deadline and writer.is_alive()
            time.sleep(0.1)
        compose.run("restart", "postgres")
        compose.wait_healthy("postgres")
        resumed_from = len(acknowledged)
        deadline = time.monotonic() + 120.0
        while len(acknowledged) < resumed_from + 5:  # writes resume
            assert time.monotonic() < deadline, f"no write since PostgreSQL restarted: {refused[-5:]}"
            time.sleep(0.2)
    finally:
        stop.set()
        writer.join(WAIT * 2)
    print(f"PostgreSQL restarted: {len(acknowledged)} writes acknowledged, refused: {refused}")
    # While PostgreSQL was down the registry refused cleanly (503), never with another 5xx or a hang.
    assert all(status == 503 for status in refused), refused
    for skillset_id in acknowledged:
        fetched = client.get(
            f"/api/v1/skillset/{skillset_id}/fetch",
            headers={"Authorization": f"Bearer {integration.owner_key}"},
        )
        assert fetched.status_code == 200, (skillset_id, fetched.text)
