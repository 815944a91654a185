"""``GET /api/v1/integration/mcpserver/{id}/usage`` over the real app: figures from records published
into the real AUDIT stream, read by the registry's own consumer."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from skillrelay_common.audit import AuditRecorder
from skillrelay_common.messaging import Bus

from .conftest import NewOwner


async def _integration(client: httpx.AsyncClient, owner: dict[str, str]) -> str:
    skillset = await client.post(
        "/api/v1/skillset/create", json={"name": "s", "description": ""}, headers=owner
    )
    assert skillset.status_code == 200, skillset.text
    created = await client.post(
        "/api/v1/integration/mcpserver/create",
        json={"name": "i", "description": "", "skillsetId": skillset.json()["id"]},
        headers=owner,
    )
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


async def _usage_once(
    client: httpx.AsyncClient, url: str, owner: dict[str, str], calls: int, deadline: float = 20.0
) -> dict[str, Any]:
    """The usage answer once it counts ``calls`` calls (the consumer reads the stream asynchronously)."""

    async def poll() -> dict[str, Any]:
        while True:
            answer = await client.get(url, headers=owner)
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            if body["totals"]["calls"] >= calls:
                return body
            await asyncio.sleep(0.1)

    return await asyncio.wait_for(poll(), deadline)


async def test_usage_counts_calls_per_tool_errors_and_latency(
    client: httpx.AsyncClient, new_owner: NewOwner, bus: Bus
) -> None:
    owner = await new_owner("usage")
    integration = await _integration(client, owner)
    audit = AuditRecorder(bus, "edge")
    await audit.start()
    try:
        for _ in range(8):
            audit.record("tool.call", integration, outcome="ok", latency_ms=4.0, data={"tool": "greet"})
        audit.record("tool.call", integration, outcome="is_error", latency_ms=400.0, data={"tool": "greet"})
        audit.record("tool.call", integration, outcome="error", latency_ms=2.0, data={"tool": "search"})
        audit.record("mcp.request", integration, outcome="ok", latency_ms=1.0, data={"method": "tools/list"})
        audit.record("auth.failure", integration, outcome="401", data={"reason": "no access token"})
        audit.record("session.opened", integration, outcome="ok")  # not a call
        await asyncio.wait_for(audit.flush(), 10)
    finally:
        await audit.stop()

    url = f"/api/v1/integration/mcpserver/{integration}/usage"
    hour = await _usage_once(client, url, owner, 11)
    assert hour["window"] == "1h" and hour["binSeconds"] == 60 and len(hour["series"]) == 60
    assert hour["totals"]["calls"] == 11 and hour["totals"]["errors"] == 2 and hour["refused"] == 1
    tools = {tool["name"]: tool for tool in hour["tools"]}
    assert set(tools) == {"greet", "search"}
    assert (tools["greet"]["calls"], tools["greet"]["errors"], tools["greet"]["errorRate"]) == (9, 1, 0.1111)
    assert 4.0 <= tools["greet"]["p50Ms"] <= 4.8 and 400.0 <= tools["greet"]["p95Ms"] <= 480.0
    assert sum(point["calls"] for point in hour["series"]) == 11

    day = (await client.get(url, params={"window": "1d"}, headers=owner)).json()
    assert day["binSeconds"] == 900 and len(day["series"]) == 96 and day["totals"]["calls"] == 11

    assert (await client.get(url, params={"window": "1w"}, headers=owner)).status_code == 400
    stranger = await new_owner("stranger")
    assert (await client.get(url, headers=stranger)).status_code == 404
