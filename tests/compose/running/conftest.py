"""The running compose project that ``make test-compose`` (tests/compose/run.sh) brought its own Docker
engine and images for: compose commands, probes run inside containers, and a JSON-RPC client that
talks to the stack only through the proxy's published port."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from skillrelay_devstack.raw_mcp import initialize_request, stream_events

PROTOCOL = "2025-11-25"
ACCEPT = "application/json, text/event-stream"


@dataclass
class Compose:
    """``docker-compose`` on this repository's compose file, with the environment run.sh exported."""

    binary: str
    root: str
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def run(self, *args: str, timeout: float = 300.0, stdin: str | None = None) -> str:
        completed = subprocess.run(
            [self.binary, *args],
            cwd=self.root,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"docker-compose {' '.join(args)} exited {completed.returncode}:\n{completed.stderr[-4000:]}"
            )
        return completed.stdout

    def services(self) -> dict[str, dict[str, Any]]:
        """``ps`` of every container of the project (stopped ones too), by service."""
        out = self.run("ps", "--all", "--format", "json")
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {row["Service"]: row for row in rows}

    def wait_healthy(self, *services: str, timeout: float = 600.0) -> None:
        """Until every named service (all when none named) is running and, if it has a health check,
        healthy."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.services()
            wanted = services or tuple(rows)
            pending = [
                name
                for name in wanted
                if name not in rows
                or rows[name]["State"] != "running"
                or rows[name].get("Health") not in ("", "healthy")
            ]
            if not pending:
                return
            if time.monotonic() > deadline:
                states = {name: rows.get(name, {}).get("Status") for name in pending}
                raise TimeoutError(f"not healthy after {timeout:.0f} s: {states}")
            time.sleep(2.0)

    def python(self, service: str, script: str, *args: str, timeout: float = 60.0) -> str:
        """Run a Python script inside a running container of ``service`` (its own interpreter and
        packages), so a probe reaches that one container directly on its loopback."""
        return self.run("exec", "-T", service, "python", "-", *args, stdin=script, timeout=timeout)


@dataclass
class Integration:
    owner_key: str
    skillset_id: str
    integration_id: str
    endpoint: str
    token: str  # the current access token (rotation replaces it)


def rest(client: httpx.Client, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
    response = client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
    return response.json()


def headers(token: str, session_id: str | None = None, **extra: str) -> dict[str, str]:
    values = {
        "Authorization": f"Bearer {token}",
        "Accept": ACCEPT,
        "Content-Type": "application/json",
        "MCP-Protocol-Version": PROTOCOL,
        **extra,
    }
    if session_id:
        values["Mcp-Session-Id"] = session_id
    return values


def jsonrpc_result(response: httpx.Response, request_id: int) -> dict[str, Any]:
    """The answer to ``request_id`` from a JSON or an SSE response."""
    if response.headers.get("content-type", "").startswith("application/json"):
        answer: dict[str, Any] = response.json()
        return answer
    for _, data in stream_events(iter([*response.text.splitlines(), ""])):
        if data and data.get("id") == request_id:
            return data
    raise AssertionError(f"no answer to {request_id} in {response.text[:500]!r}")


def open_session(client: httpx.Client, endpoint: str, token: str) -> str:
    init = client.post(
        endpoint,
        headers=headers(token),
        json=initialize_request("compose-test"),
    )
    assert init.status_code == 200, init.text
    session_id = init.headers["mcp-session-id"]
    notified = client.post(
        endpoint,
        headers=headers(token, session_id),
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
    )
    assert notified.status_code == 202, notified.text
    return session_id
