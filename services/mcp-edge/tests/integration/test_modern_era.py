"""The stateless era (2026-07-28) over real NATS, beside the 2025 era on the same endpoint: discovery,
per-request ``_meta``, the mirrored headers, version errors, results with ``resultType`` and caching
hints, and ``subscriptions/listen``. The edge has no sessions service at all here: a 2026 request
never needs one, while a 2025 request is refused for the want of it."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.auth import InvalidateCredentials
from skillrelay_common.schemas.registry import SkillsetChanged
from skillrelay_common.subjects import EDGE_CREDENTIALS_INVALIDATE
from skillrelay_devstack.edge import TOKEN, ControlPlane, EdgeHarness, demo_skillset
from skillrelay_devstack.testing import until

VERSION = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": VERSION,
    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
NAME_OF = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


@pytest.fixture(scope="module")
def modern_edge(nats_url: str) -> Iterator[EdgeHarness]:
    control = ControlPlane()
    control.add("mcpserver_modern", demo_skillset("skillset_modern"))
    # No sessions service and no local sessions: whatever needs a session cannot be served.
    harness = EdgeHarness(nats_url, control, local_sessions=False)
    harness.start()
    yield harness
    harness.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


def _headers(method: str, params: dict[str, Any], **extra: str) -> dict[str, str]:
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "authorization": f"Bearer {TOKEN}",
        "mcp-protocol-version": VERSION,
        "mcp-method": method,
    }
    field = NAME_OF.get(method)
    if field is not None and field in params:
        headers["mcp-name"] = str(params[field])
    headers.update(extra)
    return headers


async def _post(
    client: httpx.AsyncClient,
    url: str,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    meta: dict[str, Any] | None = META,
    request_id: int = 5,
    **headers: str,
) -> httpx.Response:
    body_params = dict(params or {})
    if meta is not None:
        body_params["_meta"] = meta
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": body_params}
    return await client.post(url, headers=_headers(method, body_params, **headers), json=body)


async def test_discover_describes_the_server_without_a_session(
    modern_edge: EdgeHarness, client: httpx.AsyncClient
) -> None:
    url = modern_edge.mcp_url("mcpserver_modern")
    answer = await _post(client, url, "server/discover", **{"mcp-session-id": "ignored-session-id"})
    assert answer.status_code == 200, answer.text
    assert "mcp-session-id" not in answer.headers
    result = answer.json()["result"]
    assert result["resultType"] == "complete"
    assert result["supportedVersions"][0] == VERSION and "2025-11-25" in result["supportedVersions"]
    assert result["capabilities"]["tools"] == {"listChanged": True}
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "demo"
    assert result["cacheScope"] == "private" and result["ttlMs"] >= 0
    # The same endpoint still serves the 2025 era, which needs the (absent) sessions service.
    legacy = await client.post(
        url,
        headers={k: v for k, v in _headers("initialize", {}).items() if not k.startswith("mcp-")},
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t"}},
        },
    )
    assert legacy.status_code == 503


@pytest.mark.parametrize(
    ("meta", "missing"),
    [
        (None, "_meta"),
        ({k: v for k, v in META.items() if not k.endswith("protocolVersion")}, "protocolVersion"),
        ({k: v for k, v in META.items() if not k.endswith("clientCapabilities")}, "clientCapabilities"),
    ],
)
async def test_a_request_without_its_required_meta_is_invalid_params(
    modern_edge: EdgeHarness, client: httpx.AsyncClient, meta: dict[str, Any] | None, missing: str
) -> None:
    answer = await _post(client, modern_edge.mcp_url("mcpserver_modern"), "server/discover", meta=meta)
    assert answer.status_code == 400
    error = answer.json()
    assert error["id"] == 5 and error["error"]["code"] == -32602 and missing in error["error"]["message"]


async def test_client_info_is_optional(modern_edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    meta = {k: v for k, v in META.items() if not k.endswith("clientInfo")}
    answer = await _post(client, modern_edge.mcp_url("mcpserver_modern"), "tools/list", meta=meta)
    assert answer.status_code == 200 and "tools" in answer.json()["result"]


async def test_versions_unknown_or_mismatched(modern_edge: EdgeHarness, client: httpx.AsyncClient) -> None:
    url = modern_edge.mcp_url("mcpserver_modern")
    future = {**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}
    unsupported = await _post(
        client, url, "server/discover", meta=future, **{"mcp-protocol-version": "2099-01-01"}
    )
    assert unsupported.status_code == 400
    error = unsupported.json()["error"]
    assert error["code"] == -32022 and error["data"]["requested"] == "2099-01-01"
    assert VERSION in error["data"]["supported"] and "2025-11-25" in error["data"]["supported"]
    mismatched = await _post(client, url, "server/discover", meta=future)
    assert mismatched.status_code == 400 and mismatched.json()["error"]["code"] == -32020
    headerless = await client.post(
        url,
        headers={k: v for k, v in _headers("server/discover", {}).items() if k != "mcp-protocol-version"},
        json={"jsonrpc": "2.0", "id": 9, "method": "server/discover", "params": {"_meta": META}},
    )
    assert headerless.status_code == 400 and headerless.json()["error"]["code"] == -32020


async def test_mirrored_headers_must_match_the_body(
    modern_edge: EdgeHarness, client: httpx.AsyncClient
) -> None:
    url = modern_edge.mcp_url("mcpserver_modern")
    call = {"name": "test_simple_text", "arguments": {}}
    for headers in ({"mcp-method": "prompts/list"}, {"mcp-name": "echo"}, {"mcp-method": "TOOLS/CALL"}):
        refused = await _post(client, url, "tools/call", call, **headers)
        assert refused.status_code == 400, headers
        assert refused.json()["error"]["code"] == -32020
    missing = await client.post(
        url,
        headers={k: v for k, v in _headers("tools/call", call).items() if k != "mcp-name"},
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {**call, "_meta": META}},
    )
    assert missing.status_code == 400 and missing.json()["error"]["code"] == -32020
    encoded = "=?base64?" + base64.b64encode(b"test_simple_text").decode() + "?="
    for name in (encoded, "test_simple_text"):
        accepted = await _post(client, url, "tools/call", call, **{"mcp-name": name})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["result"]["content"][0]["text"].startswith("This is a simple text")


async def test_removed_and_unknown_methods_are_404(
    modern_edge: EdgeHarness, client: httpx.AsyncClient
) -> None:
    url = modern_edge.mcp_url("mcpserver_modern")
    for method in ("initialize", "ping", "logging/setLevel", "resources/subscribe", "unknown/method"):
        answer = await _post(client, url, method)
        assert answer.status_code == 404, method
        assert answer.json()["error"]["code"] == -32601 and answer.json()["id"] == 5


async def test_results_carry_result_type_and_caching_hints(
    modern_edge: EdgeHarness, client: httpx.AsyncClient
) -> None:
    url = modern_edge.mcp_url("mcpserver_modern")
    for method in ("tools/list", "prompts/list", "resources/list", "resources/templates/list"):
        result = (await _post(client, url, method)).json()["result"]
        assert (result["resultType"], result["cacheScope"]) == ("complete", "private"), method
        assert isinstance(result["ttlMs"], int) and result["ttlMs"] >= 0
    read = (await _post(client, url, "resources/read", {"uri": "test://static-text"})).json()["result"]
    assert read["contents"][0]["text"].startswith("This is the content") and "ttlMs" in read
    called = (await _post(client, url, "tools/call", {"name": "echo", "arguments": {"message": "hi"}})).json()
    assert called["result"] == {"content": [{"type": "text", "text": "echo: hi"}], "resultType": "complete"}


async def test_a_missing_resource_is_invalid_params(
    modern_edge: EdgeHarness, client: httpx.AsyncClient
) -> None:
    uri = "test://nowhere"
    answer = await _post(client, modern_edge.mcp_url("mcpserver_modern"), "resources/read", {"uri": uri})
    error = answer.json()["error"]
    assert (error["code"], error["data"]) == (-32602, {"uri": uri})


async def test_get_and_delete_are_not_part_of_2026(
    modern_edge: EdgeHarness, client: httpx.AsyncClient
) -> None:
    url = modern_edge.mcp_url("mcpserver_modern")
    headers = {
        "authorization": f"Bearer {TOKEN}",
        "mcp-protocol-version": VERSION,
        "accept": "text/event-stream",
    }
    for method in ("GET", "DELETE"):
        answer = await client.request(method, url, headers=headers)
        assert answer.status_code == 405 and answer.headers["allow"] == "POST"


async def _listen(
    client: httpx.AsyncClient,
    url: str,
    notifications: dict[str, Any],
    frames: list[dict[str, Any]],
    count: int,
) -> None:
    params = {"notifications": notifications, "_meta": META}
    body = {"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen", "params": params}
    headers = _headers("subscriptions/listen", params)
    async with client.stream("POST", url, headers=headers, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            assert not line.startswith("id:")  # 2026-07-28 streams are not resumable
            if line.startswith("data: "):
                frames.append(msgspec.json.decode(line[6:]))
                if len(frames) == count:
                    return


async def test_listen_acknowledges_then_delivers_only_what_was_asked(
    modern_edge: EdgeHarness, client: httpx.AsyncClient, bus: Bus
) -> None:
    url = modern_edge.mcp_url("mcpserver_modern")
    tools_and_resource: list[dict[str, Any]] = []
    prompts_only: list[dict[str, Any]] = []
    wanted = {"toolsListChanged": True, "resourceSubscriptions": ["test://static-text"]}
    first = asyncio.create_task(_listen(client, url, wanted, tools_and_resource, 3))
    second = asyncio.create_task(_listen(client, url, {"promptsListChanged": True}, prompts_only, 2))
    await until(lambda: bool(tools_and_resource) and bool(prompts_only), 10)
    assert tools_and_resource[0]["method"] == "notifications/subscriptions/acknowledged"
    assert tools_and_resource[0]["params"]["notifications"] == wanted
    for entity, uri in (("ability", None), ("resource", "test://static-text"), ("prompt", None)):
        changed = SkillsetChanged(
            skillset_id="skillset_modern",
            owner_id="user_1",
            change="updated",
            entity=entity,
            uri=uri,
            revision=2,
        )
        await bus.nc.publish(f"events.registry.{entity}.updated", msgspec.json.encode(changed))
    await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert [frame["method"] for frame in tools_and_resource[1:]] == [
        "notifications/tools/list_changed",
        "notifications/resources/updated",
    ]
    assert tools_and_resource[2]["params"]["uri"] == "test://static-text"
    assert [frame["method"] for frame in prompts_only[1:]] == ["notifications/prompts/list_changed"]
    for frame in [*tools_and_resource, *prompts_only]:
        assert frame["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1"


async def test_a_revoked_credential_ends_its_listen_streams(
    modern_edge: EdgeHarness, client: httpx.AsyncClient, bus: Bus
) -> None:
    frames: list[dict[str, Any]] = []
    listening = asyncio.create_task(
        _listen(client, modern_edge.mcp_url("mcpserver_modern"), {"toolsListChanged": True}, frames, 2)
    )
    await until(lambda: bool(frames), 10)
    # What auth broadcasts when the token is rotated (every replica acknowledges it).
    await bus.request(
        EDGE_CREDENTIALS_INVALIDATE,
        InvalidateCredentials(integration_id="mcpserver_modern", reason="rotated"),
    )
    await asyncio.wait_for(listening, 10)
    assert frames[1] == {
        "jsonrpc": "2.0",
        "id": "listen-1",
        "result": {"resultType": "complete", "_meta": {"io.modelcontextprotocol/subscriptionId": "listen-1"}},
    }


async def test_listen_streams_on_every_replica_hear_one_change(nats_url: str, bus: Bus) -> None:
    """Each replica fans the registry's events out to the streams it holds: a client may listen on
    any replica, with nothing shared but NATS."""
    control = ControlPlane()
    control.add("mcpserver_modern", demo_skillset("skillset_modern"))
    replicas = [EdgeHarness(nats_url, control, local_sessions=False) for _ in range(2)]
    for replica in replicas:
        replica.start()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            heard: list[list[dict[str, Any]]] = [[], []]
            listening = [
                asyncio.create_task(
                    _listen(http, replica.mcp_url("mcpserver_modern"), {"toolsListChanged": True}, frames, 2)
                )
                for replica, frames in zip(replicas, heard, strict=True)
            ]
            await until(lambda: all(heard), 10)
            changed = SkillsetChanged(
                skillset_id="skillset_modern",
                owner_id="user_1",
                change="created",
                entity="ability",
                revision=3,
            )
            await bus.nc.publish("events.registry.ability.created", msgspec.json.encode(changed))
            await asyncio.wait_for(asyncio.gather(*listening), 10)
        assert [frames[1]["method"] for frames in heard] == ["notifications/tools/list_changed"] * 2
    finally:
        for replica in replicas:
            replica.stop()
