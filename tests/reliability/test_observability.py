"""Audit and metrics through the running stack: an MCP tool call shows up, scrubbed, in the owner's
``audit/list`` (and not in another owner's), and every HTTP service exposes its Prometheus metrics."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from skillrelay_devstack.stack import Stack

from .conftest import McpClient, Owner

pytestmark = pytest.mark.slow


async def test_tool_call_is_audited_and_listed(rstack: Stack, http: httpx.AsyncClient) -> None:
    owner = Owner(rstack).create()
    other = Owner(rstack).create()
    client = McpClient(http, owner.endpoint(1), owner.token)
    assert (await client.call("tools/call", {"name": "hello", "arguments": {}})).status_code == 200
    bad = await http.post(owner.endpoint(0), json={}, headers={"authorization": "Bearer sr_mcp_wrong-token"})
    assert bad.status_code == 401
    url = f"{rstack.registry_url}/api/v1/integration/mcpserver/{owner.integration_id}/audit/list"

    kinds: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = await http.get(url, params={"take": "100"}, headers=owner.headers)
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        kinds = [item["data"]["kind"] for item in items]
        if {"tool.call", "auth.failure", "session.opened"} <= set(kinds):
            break
        await asyncio.sleep(0.2)
    assert {"tool.call", "auth.failure", "session.opened"} <= set(kinds), kinds
    tool_call = next(item for item in items if item["data"]["kind"] == "tool.call")
    assert tool_call["subject"] == owner.integration_id
    assert tool_call["data"]["outcome"] and tool_call["data"]["latency_ms"] >= 0
    assert tool_call["data"]["principal"].startswith("static:")
    assert tool_call["data"]["details"]["tool"] == "hello"
    assert owner.token not in listed.text and "sr_mcp_wrong-token" not in listed.text

    foreign = await http.get(url, headers=other.headers)
    assert foreign.status_code == 404


@pytest.mark.parametrize("service", ["registry", "auth", "edge-1", "edge-2"])
async def test_metrics_are_exposed(rstack: Stack, http: httpx.AsyncClient, service: str) -> None:
    base = {"registry": rstack.registry_url, "auth": rstack.auth_url}.get(service)
    base = base or rstack.edge_urls[int(service[-1]) - 1]
    await http.get(f"{base}/health")
    response = await http.get(f"{base}/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'skillrelay_http_requests_total{method="GET",outcome="2xx",route="/health"}' in text
    assert "skillrelay_nats_request_seconds" in text
    assert "skillrelay_audit_dropped_total 0.0" in text
