"""The upstream MCP client against a real server built with the official Python SDK (``mcp`` 2.x), in
both eras: listings, calls with progress, log messages and elicitation, credentials, failures."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from skillrelay_common.outbound.targets import TargetCache
from skillrelay_common.schemas.abilities import SourceDef
from skillrelay_common.upstream import (
    UpstreamConnection,
    UpstreamRpcError,
    UpstreamUnreachable,
    read_catalog,
    watch_changes,
)
from skillrelay_common.upstream.client import Era
from skillrelay_devstack.upstream import UpstreamServer

ERAS: list[tuple[Era, ...]] = [("stateless", "session"), ("session",)]


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


def source(url: str, **extra: Any) -> SourceDef:
    return SourceDef(id="src_1", type="mcp", name="tools-upstream", url=url, **extra)


class Recorder:
    """A MessageHandler that keeps what the upstream sent and answers elicitations with a name."""

    def __init__(self) -> None:
        self.notifications: list[tuple[str, dict[str, Any]]] = []
        self.asked: list[str] = []

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        self.notifications.append((method, params))

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.asked.append(method)
        return {"action": "accept", "content": {"name": "Ada"}}


@pytest.mark.parametrize("eras", ERAS, ids=["stateless-first", "session-only"])
async def test_read_catalog_lists_everything_the_upstream_offers(
    upstream: UpstreamServer, eras: tuple[Era, ...]
) -> None:
    catalog = await read_catalog(source(upstream.url), allow_private=True, eras=eras)
    assert catalog.era == eras[0]
    assert {tool["name"] for tool in catalog.tools} == {
        "echo",
        "add",
        "count",
        "ask_name",
        "ask_twice",
        "slow",
        "whoami",
        "add_tool",
        "locate",
        "touch",
    }
    add = next(tool for tool in catalog.tools if tool["name"] == "add")
    assert add["inputSchema"]["required"] == ["a", "b"]
    assert add["outputSchema"]["properties"]["total"]["type"] == "integer"
    assert [resource["uri"] for resource in catalog.resources] == ["upstream://greeting"]
    assert [template["uriTemplate"] for template in catalog.resource_templates] == [
        "upstream://items/{item_id}"
    ]
    assert [prompt["name"] for prompt in catalog.prompts] == ["greet"]
    assert catalog.server_info["name"] == "upstream"


async def test_a_loopback_upstream_is_refused_unless_private_targets_are_allowed(
    upstream: UpstreamServer,
) -> None:
    with pytest.raises(UpstreamUnreachable, match="refused"):
        await read_catalog(source(upstream.url))


async def test_an_unreachable_upstream_is_a_clear_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UpstreamUnreachable, match="cannot reach upstream tools-upstream"):
        await read_catalog(source(f"http://127.0.0.1:{port}/mcp", timeout_ms=2_000), allow_private=True)


async def test_a_silent_upstream_times_out_within_the_source_timeout() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(30)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(UpstreamUnreachable, match="did not answer connect within 300 ms"):
            await read_catalog(source(f"http://127.0.0.1:{port}/mcp", timeout_ms=300), allow_private=True)
    finally:
        server.close()


@pytest.mark.parametrize("eras", ERAS, ids=["stateless-first", "session-only"])
async def test_calls_relay_progress_logs_and_elicitation(
    upstream: UpstreamServer, eras: tuple[Era, ...]
) -> None:
    connection = UpstreamConnection(source(upstream.url), targets=TargetCache(allow_private=True), eras=eras)
    try:
        recorder = Recorder()
        result = await connection.request(
            "tools/call",
            {"name": "count", "arguments": {"steps": 3}, "_meta": {"progressToken": "p1"}},
            messages=recorder,
            log_level="debug",
        )
        assert result["content"][0]["text"] == "counted to 3"
        progress = [params for method, params in recorder.notifications if method == "notifications/progress"]
        assert [item["progress"] for item in progress] == [1, 2, 3]
        assert all(item["progressToken"] == "p1" for item in progress)
        logs = [
            params["data"] for method, params in recorder.notifications if method == "notifications/message"
        ]
        assert logs == ["counted 1", "counted 2", "counted 3"]

        capabilities = {"elicitation": {"form": {}}}
        answer = await connection.request(
            "tools/call",
            {"name": "ask_name", "arguments": {}},
            messages=recorder,
            client_capabilities=capabilities,
        )
        if connection.era == "session":
            # A 2025 session: the upstream asked on the call's stream and got the recorder's answer.
            assert recorder.asked == ["elicitation/create"]
            assert answer["content"][0]["text"] == "Hello, Ada!"
        else:
            # 2026-07-28: the question comes back as the result; the caller retries with the answer.
            assert answer["resultType"] == "input_required"
            [(key, request)] = answer["inputRequests"].items()
            assert request["method"] == "elicitation/create"
            retry = {
                "name": "ask_name",
                "arguments": {},
                "inputResponses": {key: {"action": "accept", "content": {"name": "Ada"}}},
                "requestState": answer.get("requestState"),
            }
            final = await connection.request("tools/call", retry, client_capabilities=capabilities)
            assert final["content"][0]["text"] == "Hello, Ada!"
    finally:
        await connection.aclose()


@pytest.mark.parametrize("eras", ERAS, ids=["stateless-first", "session-only"])
async def test_the_sources_headers_reach_the_upstream_and_errors_are_relayed(
    upstream: UpstreamServer, eras: tuple[Era, ...]
) -> None:
    upstream_source = source(upstream.url, headers={"Authorization": "Bearer upstream-secret"})
    connection = UpstreamConnection(upstream_source, targets=TargetCache(allow_private=True), eras=eras)
    try:
        result = await connection.request("tools/call", {"name": "whoami", "arguments": {}})
        assert result["content"][0]["text"] == "authorization=Bearer upstream-secret"
        read = await connection.request("resources/read", {"uri": "upstream://items/7"})
        assert read["contents"][0]["text"] == "item 7"
        prompt = await connection.request("prompts/get", {"name": "greet", "arguments": {"name": "Ada"}})
        assert "Ada" in prompt["messages"][0]["content"]["text"]
        with pytest.raises(UpstreamRpcError) as error:
            await connection.request("prompts/get", {"name": "no-such-prompt"})
        assert "secret" not in error.value.message
    finally:
        await connection.aclose()


async def test_arguments_a_tool_marks_x_mcp_header_go_in_mcp_param_headers(upstream: UpstreamServer) -> None:
    """At 2026-07-28 the SDK's server refuses a call of ``locate`` without the ``Mcp-Param-Region``
    header its inputSchema asks for; given the schema, the client mirrors the argument (base64 for a
    value a header cannot carry as is)."""
    catalog = await read_catalog(source(upstream.url), allow_private=True)
    schema = next(tool["inputSchema"] for tool in catalog.tools if tool["name"] == "locate")
    assert schema["properties"]["region"]["x-mcp-header"] == "Region"
    connection = UpstreamConnection(source(upstream.url), targets=TargetCache(allow_private=True))
    try:
        for region in ("eu-west", "Grüße aus Köln"):
            params = {"name": "locate", "arguments": {"region": region, "text": "hi"}}
            result = await connection.request("tools/call", params, input_schema=schema)
            assert result["content"][0]["text"] == f"{region}: hi"
        assert connection.era == "stateless"
        with pytest.raises(UpstreamRpcError) as refused:  # without the schema: no header, refused
            await connection.request(
                "tools/call", {"name": "locate", "arguments": {"region": "x", "text": "y"}}
            )
        assert refused.value.code == -32020 and "Mcp-Param-Region" in refused.value.message
    finally:
        await connection.aclose()


async def test_a_session_the_upstream_forgot_is_opened_again(upstream: UpstreamServer) -> None:
    connection = UpstreamConnection(
        source(upstream.url), targets=TargetCache(allow_private=True), eras=("session",)
    )
    try:
        await connection.connect()
        first = connection.session_id
        connection.session_id = "forgotten-session"  # as after an upstream restart: it answers 404
        result = await connection.request("tools/call", {"name": "echo", "arguments": {"text": "again"}})
        assert result["content"][0]["text"] == "again"
        assert connection.session_id not in {None, first, "forgotten-session"}
    finally:
        await connection.aclose()


async def test_list_changed_from_the_upstream_is_heard_by_a_watcher() -> None:
    with UpstreamServer() as changing:  # its own server: this test changes the tool list
        targets = TargetCache(allow_private=True)
        watched = UpstreamConnection(source(changing.url), targets=targets)
        caller = UpstreamConnection(source(changing.url), targets=targets)
        heard: asyncio.Queue[str] = asyncio.Queue()
        watcher = asyncio.create_task(watch_changes(watched, heard.put))
        try:
            # The listen stream may open after the first change: change until one is heard.
            async with asyncio.timeout(20):
                method = None
                attempt = 0
                while method is None:
                    attempt += 1
                    await caller.request(
                        "tools/call", {"name": "add_tool", "arguments": {"name": f"t{attempt}"}}
                    )
                    try:
                        method = await asyncio.wait_for(heard.get(), 1.0)
                    except TimeoutError:
                        continue
            assert method == "notifications/tools/list_changed"
            catalog = await read_catalog(source(changing.url), allow_private=True)
            assert "t1" in {tool["name"] for tool in catalog.tools}
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await watched.aclose()
            await caller.aclose()


async def test_resources_updated_from_the_upstream_is_heard_for_its_own_resources(
    upstream: UpstreamServer,
) -> None:
    """The watcher subscribes to the upstream's resources (its listing; the SDK offers subscriptions
    at 2026-07-28) and hears ``resources/updated`` for them; one for a URI it does not list is not
    passed on."""
    targets = TargetCache(allow_private=True)
    watched = UpstreamConnection(source(upstream.url), targets=targets)
    caller = UpstreamConnection(source(upstream.url), targets=targets)
    changes: asyncio.Queue[str] = asyncio.Queue()
    updated: asyncio.Queue[str] = asyncio.Queue()
    watcher = asyncio.create_task(watch_changes(watched, changes.put, updated.put))
    try:
        async with asyncio.timeout(20):
            uri = None
            while uri is None:  # the listen stream opens asynchronously: touch until one is heard
                for touched in ("upstream://not-listed", "upstream://greeting"):
                    await caller.request("tools/call", {"name": "touch", "arguments": {"uri": touched}})
                try:
                    uri = await asyncio.wait_for(updated.get(), 1.0)
                except TimeoutError:
                    continue
        assert uri == "upstream://greeting"
        assert watched.era == "stateless"
        await asyncio.sleep(0.3)
        assert all(updated.get_nowait() == "upstream://greeting" for _ in range(updated.qsize()))
        assert changes.empty()
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await watched.aclose()
        await caller.aclose()
