"""An MCP client streaming a long tool call (progress notifications over SSE) loses its edge replica and
resumes on the other one with ``Last-Event-ID``.

- Connection dropped (the replica lives on): the other replica replays every event after the last
  one seen and then the final result: no event missing, none duplicated.
- Replica killed (SIGKILL): the other replica replays every event the dead one had stored, finds that
  the replica holding the call is gone, adopts the call from the worker (which kept the events the
  dead replica never stored, and its answer, which reached nobody) and delivers the rest: every
  remaining progress event, no gap, no duplicate, and the final result with the right content.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from skillrelay_devstack.stack import Stack

from .conftest import ACCEPT, VERSION, McpClient, Owner, WorkerProcess, wait_until_ready, worker_tool

pytestmark = pytest.mark.slow

STEPS = 15


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str | None, dict[str, Any] | None]]:
    """(event id, JSON data) per SSE event; (None, None) for a comment (keep-alive)."""
    event_id: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield None, None
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and (data or event_id):
            # An event with an id and empty data primes resumption (MCP 2025-11-25): keep its id.
            text = "\n".join(data).strip()
            yield event_id, (json.loads(text) if text else {})
            event_id, data = None, []


def _progress(message: dict[str, Any]) -> float | None:
    if message.get("method") == "notifications/progress":
        return float(message["params"]["progress"])
    return None


async def _start_call(
    http: httpx.AsyncClient, client: McpClient, seen: list[tuple[str, dict[str, Any]]], stop_after: int
) -> None:
    """POST a streaming tools/call; read until ``stop_after`` progress events, then drop the stream."""
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {
            "name": "count",
            "arguments": {"steps": STEPS, "interval": 0.25},
            "_meta": {"progressToken": "p1"},
        },
    }
    async with http.stream("POST", client.url, headers=client._headers(), json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for event_id, message in _events(response):
            if message is None:
                continue
            assert event_id, "a resumable stream gives every event an id"
            seen.append((event_id, message))
            if len([m for _, m in seen if _progress(m) is not None]) >= stop_after:
                return


async def _resume(
    http: httpx.AsyncClient, client: McpClient, url: str, last_event_id: str, until_final: bool
) -> list[tuple[str, dict[str, Any]]]:
    headers = {
        "accept": ACCEPT,
        "authorization": f"Bearer {client.token}",
        "mcp-session-id": client.session or "",
        "mcp-protocol-version": VERSION,
        "last-event-id": last_event_id,
    }
    replayed: list[tuple[str, dict[str, Any]]] = []
    keepalives = 0

    async def read() -> None:
        nonlocal keepalives
        async with http.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200, await response.aread()
            async for event_id, message in _events(response):
                if message is None:
                    keepalives += 1
                    if not until_final and keepalives >= 2 and replayed:
                        return
                    continue
                assert event_id
                replayed.append((event_id, message))
                if "result" in message or "error" in message:
                    return

    try:
        await asyncio.wait_for(read(), 15 if until_final else 6)
    except TimeoutError:
        if until_final:
            raise
    return replayed


def _check_continuation(
    seen: list[tuple[str, dict[str, Any]]], replayed: list[tuple[str, dict[str, Any]]]
) -> None:
    seen_ids = [event_id for event_id, _ in seen]
    replayed_ids = [event_id for event_id, _ in replayed]
    assert not set(seen_ids) & set(replayed_ids), "an event was delivered twice"
    assert len(set(replayed_ids)) == len(replayed_ids)
    steps = [p for _, m in seen + replayed if (p := _progress(m)) is not None]
    assert steps == [float(n) for n in range(1, len(steps) + 1)], f"progress has a gap: {steps}"


async def test_stream_resumes_on_the_other_replica(rstack: Stack, worker_process: WorkerProcess) -> None:
    subject = worker_process.subject
    owner = Owner(rstack).create([worker_tool("count", subject, 60_000)])
    worker_process.start(owner)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as http:
        client = McpClient(http, owner.endpoint(0), owner.token)
        assert (await client.initialize()).status_code == 200
        deadline = time.monotonic() + 30
        while (
            await client.call("tools/call", {"name": "count", "arguments": {"steps": 1, "interval": 0}})
        ).json().get("result", {}).get("isError", True) and time.monotonic() < deadline:
            pass  # until the worker subscribed

        # 1. The connection drops; replica 1 lives on and keeps storing the call's events.
        seen: list[tuple[str, dict[str, Any]]] = []
        await _start_call(http, client, seen, stop_after=3)
        replayed = await _resume(http, client, owner.endpoint(1), seen[-1][0], until_final=True)
        _check_continuation(seen, replayed)
        first_case = f"{len(seen)} seen + {len(replayed)} replayed"
        final = replayed[-1][1]
        assert final.get("id") == 7 and final["result"]["content"][0]["text"] == str(STEPS), final

        # 2. Replica 1 is killed in the middle of a call.
        seen = []
        await _start_call(http, client, seen, stop_after=3)
        await asyncio.sleep(1.0)  # replica 1 stores a few more events nobody has read yet
        edge_1 = next(s for s in rstack.services if s.name == "edge-1")
        edge_1.kill()
        try:
            replayed = await _resume(http, client, owner.endpoint(1), seen[-1][0], until_final=True)
            _check_continuation(seen, replayed)
            steps = [p for _, m in seen + replayed if (p := _progress(m)) is not None]
            assert steps == [float(n) for n in range(1, STEPS + 1)], f"progress missing: {steps}"
            final = replayed[-1][1]
            assert final.get("id") == 7 and final["result"]["content"][0]["text"] == str(STEPS), final
            assert not final["result"].get("isError"), final
            print(
                f"dropped connection: {first_case}; "
                f"killed replica: {len(seen)} seen + {len(replayed)} after resuming on the survivor, "
                "final result delivered"
            )
        finally:
            edge_1.start()
            await wait_until_ready(rstack)
