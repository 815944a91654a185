"""The reliability harness: one whole stack for the suite, on its OWN nats-server and PostgreSQL (so
tests may kill and restart them), two edge replicas, plus helpers for owners and MCP clients."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from skillrelay_common import bus_auth
from skillrelay_devstack.raw_mcp import initialize_request
from skillrelay_devstack.stack import Stack, running_stack

ACCEPT = "application/json, text/event-stream"
VERSION = "2025-11-25"


@pytest.fixture(scope="session")
def rstack(test_state_dir: Path) -> Iterator[Stack]:
    # Under the session's state folder: PostgreSQL (run as another user when we are root) can reach it.
    folder = test_state_dir / f"reliability-{uuid.uuid4().hex[:6]}"
    with running_stack(folder / "state", edge_replicas=2, log_dir=folder / "logs") as running:
        yield running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A hard limit per test: a stuck async test would not notice the default (signal) timeout, so
    the thread method (stack dump, then exit) guards against a hang."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.timeout(300, method="thread"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(_FAILED, False)
    if report.failed:
        item.stash[_FAILED] = True
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def service_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the tail of every service log when a reliability test fails."""
    yield
    if not request.node.stash.get(_FAILED, False) or "rstack" not in request.fixturenames:
        return
    stack: Stack = request.getfixturevalue("rstack")
    for log in sorted((stack.log_dir or Path()).glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-40:]
        print(f"\n----- {log.name} -----\n" + "\n".join(lines))


def _check(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass
class Owner:
    """A registry user with one skillset (a static tool ``hello``) and one integration."""

    stack: Stack
    api_key: str = ""
    skillset_id: str = ""
    integration_id: str = ""
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"}

    def create(self, abilities: list[dict[str, Any]] | None = None) -> Owner:
        with httpx.Client(base_url=self.stack.registry_url, timeout=15) as registry:
            user = _check(
                registry.post(
                    "/api/v1/user/create",
                    json={"name": f"rel-{uuid.uuid4().hex[:6]}"},
                    headers={"authorization": f"Bearer {self.stack.admin_token}"},
                )
            )
            self.api_key = user["apiKey"]
            registry.headers.update(self.headers)
            self.skillset_id = _check(registry.post("/api/v1/skillset/create", json={"name": "rel"}))["id"]
            for ability in abilities or [HELLO]:
                _check(registry.post(f"/api/v1/skillset/{self.skillset_id}/ability/create", json=ability))
            created = _check(
                registry.post(
                    "/api/v1/integration/mcpserver/create",
                    json={"name": "rel", "skillsetId": self.skillset_id},
                )
            )
        self.integration_id, self.token = created["id"], created["accessToken"]
        return self

    def worker_credential(self) -> str:
        """A new worker credential of this owner (what its worker processes connect with)."""
        with httpx.Client(base_url=self.stack.registry_url, timeout=15, headers=self.headers) as registry:
            created = _check(registry.post("/api/v1/worker/credential/create", json={"name": "rel"}))
        return str(created["credential"])

    def endpoint(self, replica: int = 0) -> str:
        return f"{self.stack.edge_urls[replica]}/api/v1/integration/mcpserver/{self.integration_id}/mcp"


HELLO = {
    "name": "hello",
    "description": "says hi",
    "inputSchema": {"type": "object", "properties": {}},
    "handler": {"type": "static", "content": [{"type": "text", "text": "hi"}]},
}


async def timed(
    outcomes: Counter[str], request: Awaitable[httpx.Response]
) -> tuple[httpx.Response, float] | None:
    """A client's request under a fault: its response and how long it took, or None after a client
    timeout or a transport error (counted in ``outcomes``; after the latter a short back-off)."""
    started = time.monotonic()
    try:
        response = await request
    except httpx.TimeoutException:
        outcomes["client-timeout"] += 1
        return None
    except httpx.TransportError as exc:
        outcomes[f"transport:{type(exc).__name__}"] += 1
        await asyncio.sleep(0.1)
        return None
    return response, time.monotonic() - started


def assert_clean(outcomes: Counter[str]) -> None:
    """What clients saw through a fault: no client timeout, no transport error, no 5xx but a clean 503."""
    assert outcomes["client-timeout"] == 0, outcomes
    assert not [k for k in outcomes if k.startswith("transport:")], outcomes
    unclean = {k: v for k, v in outcomes.items() if k.startswith("http:5") and k != "http:503"}
    assert not unclean, outcomes


def rpc_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC answer, whether it came as JSON or as the last SSE message."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        answer: dict[str, Any] = json.loads(data[-1])
        return answer
    answer = response.json()
    return answer


@dataclass
class McpClient:
    """A minimal Streamable HTTP client that re-initializes when its session is gone (404)."""

    http: httpx.AsyncClient
    url: str
    token: str
    session: str | None = None
    next_id: int = field(default=1)

    def _headers(self) -> dict[str, str]:
        sent = {"accept": ACCEPT, "content-type": "application/json", "authorization": f"Bearer {self.token}"}
        if self.session:
            sent["mcp-session-id"] = self.session
            sent["mcp-protocol-version"] = VERSION
        return sent

    async def initialize(self) -> httpx.Response:
        self.session = None
        response = await self.http.post(
            self.url,
            headers=self._headers(),
            json=initialize_request("reliability"),
        )
        if response.status_code == 200:
            self.session = response.headers.get("mcp-session-id")
            await self.http.post(
                self.url,
                headers=self._headers(),
                json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            )
        return response

    async def call(self, method: str, params: dict[str, Any] | None = None) -> httpx.Response:
        if self.session is None:
            opened = await self.initialize()
            if opened.status_code != 200:
                return opened
        self.next_id += 1
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}}
        response = await self.http.post(self.url, headers=self._headers(), json=body)
        if response.status_code == 404:
            self.session = None  # the session ended: the next call opens a new one
        return response


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(20.0)) as client:
        yield client


async def wait_until_ready(stack: Stack, timeout: float = 60.0) -> None:
    """Every HTTP service answers /ready with 200 again."""
    urls = [f"{stack.registry_url}/ready", f"{stack.auth_url}/ready"] + [
        f"{u}/ready" for u in stack.edge_urls
    ]

    async def poll() -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                statuses = []
                for url in urls:
                    try:
                        statuses.append((await client.get(url)).status_code)
                    except httpx.HTTPError:
                        statuses.append(0)
                if all(status == 200 for status in statuses):
                    return
                await asyncio.sleep(0.2)

    await asyncio.wait_for(poll(), timeout)


WORKER_SCRIPT = Path(__file__).with_name("reliability_worker.py")


def worker_tool(name: str, subject: str, timeout_ms: int) -> dict[str, Any]:
    return {
        "name": name,
        "description": name,
        "inputSchema": {"type": "object"},
        "handler": {"type": "worker", "subject": subject, "timeoutMs": timeout_ms},
    }


@dataclass
class WorkerProcess:
    """The reliability worker as its own process, serving ``subject`` for one owner with a worker
    credential of that owner (as a real worker runs)."""

    stack: Stack
    subject: str = field(default_factory=lambda: f"rel{uuid.uuid4().hex[:8]}")
    process: subprocess.Popen[bytes] | None = None

    def start(self, owner: Owner) -> subprocess.Popen[bytes]:
        assert self.stack.nats_url
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT), bus_auth.without_user(self.stack.nats_url), self.subject],
            cwd=WORKER_SCRIPT.parent,
            env={
                **os.environ,
                "PYTHONPATH": str(WORKER_SCRIPT.parent),
                "SKILLRELAY_WORKER_CREDENTIAL": owner.worker_credential(),
            },
        )
        return self.process

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def worker_process(rstack: Stack) -> Iterator[WorkerProcess]:
    launcher = WorkerProcess(rstack)
    yield launcher
    launcher.stop()
