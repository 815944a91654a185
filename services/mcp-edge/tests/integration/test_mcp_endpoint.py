"""The whole request path over real NATS: transport rules, credentials, sessions and every method
family, against an edge replica with a fake registry and auth."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest

from skillrelay_common.audit import read_records
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.audit import AuditRecord
from skillrelay_devstack.edge import TOKEN, EdgeHarness, initialize_request

ACCEPT = "application/json, text/event-stream"
INIT = initialize_request()


@pytest.fixture
async def client(edge: EdgeHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


def _headers(session: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"accept": ACCEPT, "content-type": "application/json", "authorization": f"Bearer {TOKEN}"}
    if session:
        headers["mcp-session-id"] = session
        headers["mcp-protocol-version"] = "2025-11-25"
    headers.update(extra)
    return headers


async def _initialize(client: httpx.AsyncClient, url: str, version: str = "2025-11-25") -> str:
    body = {**INIT, "params": {**INIT["params"], "protocolVersion": version}}  # type: ignore[dict-item]
    response = await client.post(url, headers=_headers(), json=body)
    assert response.status_code == 200
    return response.headers["mcp-session-id"]


async def _call(client: httpx.AsyncClient, url: str, session: str, method: str, params: Any = None) -> Any:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 7, "method": method}
    if params is not None:
        body["params"] = params
    response = await client.post(url, headers=_headers(session), json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_initialize_negotiates_and_issues_a_session(
    edge: EdgeHarness, client: httpx.AsyncClient
) -> None:
    url = edge.mcp_url("mcpserver_demo")
    response = await client.post(url, headers=_headers(), json=INIT)
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["protocolVersion"] == "2025-11-25"
    assert result["capabilities"]["resources"] == {"subscribe": True, "listChanged": True}
    assert len(response.headers["mcp-session-id"]) >= 22
    for asked, answered in (
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("1999-01-01", "2025-11-25"),
    ):
        body = {**INIT, "params": {**INIT["params"], "protocolVersion": asked}}
        again = await client.post(url, headers=_headers(), json=body)
        assert again.json()["result"]["protocolVersion"] == answered


async def test_first_request_without_session_gets_one(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    response = await client.post(
        edge.mcp_url("mcpserver_demo"), headers=_headers(), json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
    )
    assert response.status_code == 200
    assert response.json() == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert response.headers["mcp-session-id"]


async def test_unknown_session_is_404_and_renew_mode_issues_a_fresh_one(
    edge: EdgeHarness, client: httpx.AsyncClient
) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    strict = await client.post(edge.mcp_url("mcpserver_demo"), headers=_headers("no-such-session"), json=ping)
    assert strict.status_code == 404
    renew = await client.post(edge.mcp_url("mcpserver_renew"), headers=_headers("no-such-session"), json=ping)
    assert renew.status_code == 200
    assert renew.headers["mcp-session-id"] not in ("", "no-such-session")


async def test_a_session_of_another_integration_is_404(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    session = await _initialize(client, edge.mcp_url("mcpserver_demo"))
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    other = await client.post(edge.mcp_url("mcpserver_renew"), headers=_headers(session), json=ping)
    assert other.headers.get("mcp-session-id") != session


async def test_delete_ends_the_session(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    url = edge.mcp_url("mcpserver_demo")
    session = await _initialize(client, url)
    deleted = await client.delete(url, headers=_headers(session))
    assert deleted.status_code == 200
    after = await client.post(
        url, headers=_headers(session), json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
    )
    assert after.status_code == 404
    assert (await client.delete(url, headers=_headers(session))).status_code == 404


async def test_credentials_are_checked_before_sessions(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    url = edge.mcp_url("mcpserver_demo")
    session = await _initialize(client, url)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for headers in (
        {"accept": ACCEPT, "content-type": "application/json", "mcp-session-id": session},
        {**_headers(session), "authorization": "Bearer wrong"},
    ):
        response = await client.post(url, headers=headers, json=ping)
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="')
        assert "resource_metadata=" not in challenge  # a static-token integration: no OAuth discovery
    by_query = await client.post(
        url + f"?authorization={TOKEN}",
        headers={"accept": ACCEPT, "content-type": "application/json", "mcp-session-id": session},
        json=ping,
    )
    assert by_query.status_code == 200


async def test_unknown_integration_is_404(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    response = await client.post(edge.mcp_url("mcpserver_missing"), headers=_headers(), json=INIT)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"origin": "http://evil.example.com"}, 403),
        ({"host": "evil.example.com"}, 403),
        ({"accept": "application/json"}, 406),
        ({"content-type": "text/plain"}, 415),
        ({"mcp-protocol-version": "1999-01-01"}, 400),
    ],
)
async def test_transport_rules(
    edge: EdgeHarness, client: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    response = await client.post(edge.mcp_url("mcpserver_demo"), headers=_headers(**headers), json=INIT)
    assert response.status_code == status
    assert response.json()["error"]["code"] == -32000


async def test_loopback_origin_is_allowed(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    response = await client.post(
        edge.mcp_url("mcpserver_demo"), headers=_headers(origin="http://localhost:1234"), json=INIT
    )
    assert response.status_code == 200


async def test_body_limit(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    huge = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"a" * (5 * 1024 * 1024) + b'"}}'
    response = await client.post(edge.mcp_url("mcpserver_demo"), headers=_headers(), content=huge)
    assert response.status_code == 413


async def test_framing_errors(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    url = edge.mcp_url("mcpserver_demo")
    session = await _initialize(client, url)
    not_json = await client.post(url, headers=_headers(session), content=b"{nope")
    assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, -32700)
    not_rpc = await client.post(url, headers=_headers(session), json={"hello": 1})
    assert (not_rpc.status_code, not_rpc.json()["error"]["code"]) == (400, -32600)
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "ping"}]
    refused = await client.post(url, headers=_headers(session), json=batch)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, -32600)
    # A later session never takes a batch, whatever the header says; a 2025-03-26 session does.
    later = await client.post(
        url, headers=_headers(session, **{"mcp-protocol-version": "2025-03-26"}), json=batch
    )
    assert (later.status_code, later.json()["error"]["code"]) == (400, -32600)
    old_session = await _initialize(client, url, "2025-03-26")
    old = await client.post(
        url, headers=_headers(old_session, **{"mcp-protocol-version": "2025-03-26"}), json=batch
    )
    assert old.status_code == 200
    assert old.json() == [{"jsonrpc": "2.0", "id": 1, "result": {}}]
    unknown = await _call(client, url, session, "nope/nothing")
    assert unknown["error"]["code"] == -32601


async def test_server_discover_falls_back(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    response = await client.post(
        edge.mcp_url("mcpserver_demo"),
        headers=_headers(),
        json={"jsonrpc": "2.0", "id": 1, "method": "server/discover"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32601
    assert "mcp-session-id" not in response.headers


async def test_notifications_and_responses_are_202(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    url = edge.mcp_url("mcpserver_demo")
    session = await _initialize(client, url)
    notified = await client.post(
        url, headers=_headers(session), json={"jsonrpc": "2.0", "method": "notifications/initialized"}
    )
    assert (notified.status_code, notified.content) == (202, b"")
    answered = await client.post(
        url, headers=_headers(session), json={"jsonrpc": "2.0", "id": "srv-x-1", "result": {}}
    )
    assert answered.status_code == 202


async def test_tools(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    url = edge.mcp_url("mcpserver_demo")
    session = await _initialize(client, url)
    listed = (await _call(client, url, session, "tools/list"))["result"]["tools"]
    assert {"echo", "test_simple_text", "weather"} <= {tool["name"] for tool in listed}
    echoed = await _call(
        client, url, session, "tools/call", {"name": "echo", "arguments": {"message": "{{x}}"}}
    )
    assert echoed["result"]["content"] == [{"type": "text", "text": "echo: {{x}}"}]  # no recursion
    invalid = await _call(client, url, session, "tools/call", {"name": "echo", "arguments": {"message": 5}})
    assert invalid["result"]["isError"] is True
    unknown = await _call(client, url, session, "tools/call", {"name": "missing"})
    assert unknown["error"]["code"] == -32602
    mixed = await _call(client, url, session, "tools/call", {"name": "test_multiple_content_types"})
    assert [block["type"] for block in mixed["result"]["content"]] == [
        "text",
        "image",
        "audio",
        "resource_link",
        "resource",
    ]
    weather = await _call(client, url, session, "tools/call", {"name": "weather", "arguments": {}})
    assert weather["result"]["structuredContent"] == {"sky": "sunny"}
    refused = await _call(client, url, session, "tools/call", {"name": "fetch", "arguments": {}})
    assert refused["result"]["isError"] is True
    assert "non-public" in refused["result"]["content"][0]["text"]


async def test_resources_prompts_completion_logging(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    url = edge.mcp_url("mcpserver_demo")
    session = await _initialize(client, url)
    resources = (await _call(client, url, session, "resources/list"))["result"]["resources"]
    assert {r["uri"] for r in resources} == {"test://static-text", "test://static-binary"}
    assert (await _call(client, url, session, "resources/templates/list"))["result"] == {
        "resourceTemplates": []
    }
    binary = await _call(client, url, session, "resources/read", {"uri": "test://static-binary"})
    assert binary["result"]["contents"][0]["blob"]
    missing = await _call(client, url, session, "resources/read", {"uri": "test://nothing"})
    assert missing["error"]["code"] == -32002
    assert (await _call(client, url, session, "resources/subscribe", {"uri": "test://static-text"}))[
        "result"
    ] == {}
    assert (await _call(client, url, session, "resources/unsubscribe", {"uri": "test://static-text"}))[
        "result"
    ] == {}
    got = await _call(
        client,
        url,
        session,
        "prompts/get",
        {"name": "test_prompt_with_arguments", "arguments": {"arg1": "A", "arg2": "B"}},
    )
    assert "arg1='A', arg2='B'" in got["result"]["messages"][0]["content"]["text"]
    missing_arg = await _call(
        client,
        url,
        session,
        "prompts/get",
        {"name": "test_prompt_with_arguments", "arguments": {"arg1": "A"}},
    )
    assert missing_arg["error"]["code"] == -32602
    completion = await _call(
        client,
        url,
        session,
        "completion/complete",
        {
            "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
            "argument": {"name": "arg1", "value": "al"},
        },
    )
    assert completion["result"]["completion"]["values"] == ["alpha", "alpine"]
    assert (await _call(client, url, session, "logging/setLevel", {"level": "debug"}))["result"] == {}
    bad_level = await _call(client, url, session, "logging/setLevel", {"level": "loud"})
    assert bad_level["error"]["code"] == -32602


async def test_browser_clients_get_cors_headers(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    url = edge.mcp_url("mcpserver_demo")
    origin = "http://localhost:6274"
    preflight = await client.options(url, headers={"origin": origin, "access-control-request-method": "POST"})
    assert preflight.status_code == 204
    assert "mcp-session-id" in preflight.headers["access-control-allow-headers"]
    assert preflight.headers["access-control-allow-origin"] == origin
    answered = await client.post(url, headers=_headers(origin=origin), json=INIT)
    assert answered.headers["access-control-allow-origin"] == origin
    assert "Mcp-Session-Id" in answered.headers["access-control-expose-headers"]
    refused = await client.options(url, headers={"origin": "http://evil.example.com"})
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


async def test_other_methods_are_405(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    response = await client.put(edge.mcp_url("mcpserver_demo"), headers=_headers(), json=INIT)
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


async def test_requests_and_auth_failures_are_audited(
    edge: EdgeHarness, client: httpx.AsyncClient, bus: Bus
) -> None:
    url = edge.mcp_url("mcpserver_demo")
    session = await _initialize(client, url)
    called = await client.post(
        url,
        headers={**_headers(session), "x-request-id": "req-42-audit"},
        json={
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "secret-arg"}},
        },
    )
    assert called.status_code == 200 and called.headers["skillrelay-correlation-id"] == "req-42-audit"
    denied = await client.post(url, headers={**_headers(), "authorization": "Bearer wrong-token"}, json=INIT)
    assert denied.status_code == 401

    async def audited() -> list[AuditRecord]:
        while True:
            records, _ = await read_records(bus, "audit.mcpserver_demo.>", limit=500)
            found = [record for _, record in records]
            kinds = {record.data.kind for record in found}
            ours = any(record.data.correlation_id == "req-42-audit" for record in found)
            if {"tool.call", "mcp.request", "auth.failure"} <= kinds and ours:
                return found
            await asyncio.sleep(0.05)  # polling the stream until the recorder has flushed

    found = await asyncio.wait_for(audited(), 10)
    # The request's correlation id (the caller's X-Request-Id here) is the audit record's.
    call = next(r for r in found if r.data.correlation_id == "req-42-audit")
    assert call.data.kind == "tool.call" and call.data.details.get("tool") == "echo"
    assert call.data.outcome == "ok" and call.data.principal == "static:v1"
    assert denied.headers["skillrelay-correlation-id"] in {
        r.data.correlation_id for r in found if r.data.kind == "auth.failure"
    }
    raw = msgspec.json.encode(found).decode()
    assert "secret-arg" not in raw and "wrong-token" not in raw and TOKEN not in raw


async def test_mcp_requests_take_the_fast_path_with_a_route_label(
    edge: EdgeHarness, client: httpx.AsyncClient
) -> None:
    url = edge.mcp_url("mcpserver_demo")
    session = await _initialize(client, url)
    await _call(client, url, session, "ping")
    other = await client.post(f"{edge.url}/api/v1/integration/mcpserver/mcpserver_demo/other", json=INIT)
    assert other.status_code == 404  # not an MCP endpoint path: answered, not crashed
    assert (await client.get(f"{edge.url}/health")).status_code == 200  # the rest is still Litestar's
    metrics = (await client.get(f"{edge.url}/metrics")).text
    template = "/api/v1/integration/mcpserver/{integration_id}/mcp"
    assert f'route="{template}"' in metrics
    assert (
        'route="/api/v1/integration/mcpserver/mcpserver_demo/mcp"' not in metrics
    )  # one label, not one per id


async def test_hostile_bodies_get_clear_errors_not_5xx(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    """Regressions: each of these answered 500 or 503."""
    url = edge.mcp_url("mcpserver_demo")
    session = await _initialize(client, url)
    nested = await client.post(url, headers=_headers(session), content=b"[" * 100_000 + b"]" * 100_000)
    assert (nested.status_code, nested.json()["error"]["code"]) == (400, -32700)
    assert "nested" in nested.json()["error"]["message"]
    for raw in (b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"\xff"}}', b"\xc3\x28"):
        not_utf8 = await client.post(url, headers=_headers(session), content=raw)
        assert (not_utf8.status_code, not_utf8.json()["error"]["code"]) == (400, -32700), raw
    huge_capabilities = {
        **INIT,
        "params": {**INIT["params"], "capabilities": {"experimental": {"x": "y" * 3_000_000}}},  # type: ignore[dict-item]
    }
    refused = await client.post(url, headers=_headers(), json=huge_capabilities)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, -32602), refused.text[:200]
    assert "mcp-session-id" not in refused.headers
    long_uri = await _call(client, url, session, "resources/subscribe", {"uri": "test://" + "u" * 70_000})
    assert long_uri["error"]["code"] == -32602 and "longer than" in long_uri["error"]["message"]
    answers = [
        await _call(client, url, session, "resources/subscribe", {"uri": f"test://item/{index}"})
        for index in range(101)
    ]
    assert all("result" in answer for answer in answers[:100])
    assert answers[100]["error"]["code"] == -32602 and "at most 100" in answers[100]["error"]["message"]
    again = await _call(client, url, session, "resources/subscribe", {"uri": "test://item/7"})
    assert "result" in again  # already held: not a new subscription


async def test_two_authorization_headers_are_refused(edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    url = edge.mcp_url("mcpserver_demo")
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = [(name, value) for name, value in _headers().items() if name != "authorization"]
    for doubled in (
        [*headers, ("authorization", f"Bearer {TOKEN}"), ("authorization", "Bearer wrong")],
        [*headers, ("authorization", "Bearer wrong"), ("authorization", f"Bearer {TOKEN}")],
    ):
        answer = await client.post(url, headers=doubled, json=ping)
        assert answer.status_code == 400 and "one Authorization" in answer.json()["error"]["message"]
    two_queries = await client.post(
        f"{url}?authorization={TOKEN}&authorization=wrong", headers=headers, json=ping
    )
    assert two_queries.status_code == 400
    one = await client.post(url, headers=_headers(), json=ping)
    assert one.status_code == 200
