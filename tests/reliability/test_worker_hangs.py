"""A worker that hangs: a handler that never returns ends at the ability's timeout, and a frozen worker
process (SIGSTOP: no heartbeats) is noticed within a few seconds; the client gets an error each time,
the edge stays healthy, and the worker serves again once it runs (SIGCONT)."""

from __future__ import annotations

import signal
import time
from typing import Any

import httpx
import pytest

from skillrelay_devstack.stack import Stack

from .conftest import McpClient, Owner, WorkerProcess, rpc_body, worker_tool

pytestmark = pytest.mark.slow


def _outcome(response: httpx.Response) -> tuple[str, Any]:
    assert response.status_code == 200, response.text
    body = rpc_body(response)
    if "error" in body:
        return "rpc-error", body["error"]
    result = body["result"]
    return ("tool-error" if result.get("isError") else "ok"), result


async def test_hanging_handler_and_frozen_worker(
    rstack: Stack, worker_process: WorkerProcess, http: httpx.AsyncClient
) -> None:
    subject = worker_process.subject
    owner = Owner(rstack).create([worker_tool("echo", subject, 30_000), worker_tool("hang", subject, 2_000)])
    process = worker_process.start(owner)
    client = McpClient(http, owner.endpoint(0), owner.token)

    # The worker is up once echo answers (it may take a moment to subscribe).
    deadline = time.monotonic() + 30
    while True:
        kind, _ = _outcome(await client.call("tools/call", {"name": "echo", "arguments": {"text": "up"}}))
        if kind == "ok" or time.monotonic() > deadline:
            break
    assert kind == "ok"

    started = time.monotonic()
    kind, detail = _outcome(await client.call("tools/call", {"name": "hang", "arguments": {}}))
    hang_seconds = time.monotonic() - started
    assert kind in ("rpc-error", "tool-error"), detail
    assert 1.5 < hang_seconds < 6, hang_seconds

    process.send_signal(signal.SIGSTOP)  # frozen: no heartbeat, no answer
    try:
        started = time.monotonic()
        kind, detail = _outcome(await client.call("tools/call", {"name": "echo", "arguments": {"text": "x"}}))
        frozen_seconds = time.monotonic() - started
        assert kind in ("rpc-error", "tool-error"), detail
        assert frozen_seconds < 10, frozen_seconds
        # The edge itself is fine meanwhile.
        assert (await http.get(f"{rstack.edge_urls[0]}/ready")).status_code == 200
    finally:
        process.send_signal(signal.SIGCONT)

    kind, result = _outcome(await client.call("tools/call", {"name": "echo", "arguments": {"text": "back"}}))
    assert kind == "ok", result
    print(
        f"hanging handler ended after {hang_seconds:.1f}s; frozen worker noticed after {frozen_seconds:.1f}s"
    )
