"""The official MCP Python SDK client (``mcp==2.3.0``) against the whole stack with two edge replicas,
serving the everything example (static abilities and a worker process): static-token calls, sessions,
notifications, server-to-client requests relayed from a worker, and resumption on another replica."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import mcp.types as types
import pytest
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from skillrelay_devstack.everything import Deployment
from skillrelay_devstack.raw_mcp import initialize_request, resume_a_broken_call, stream_events
from skillrelay_devstack.testing import EverythingStarter, until

# The first test also pays for starting the whole stack (and, once, `npm ci`).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT = 15.0
PROTOCOL = "2025-11-25"


@pytest.fixture(scope="module")
def deployment(start_everything: EverythingStarter) -> Iterator[Deployment]:
    with start_everything("sdk-client", edge_replicas=2) as running:
        yield running


class Recorder:
    """What the client's callbacks saw."""

    def __init__(self) -> None:
        self.logs: list[types.LoggingMessageNotificationParams] = []
        self.notifications: list[Any] = []
        self.sampling: list[types.CreateMessageRequestParams] = []
        self.elicitations: list[Any] = []
        self.changed = asyncio.Event()

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params)

    async def on_message(self, message: Any) -> None:
        notification = getattr(message, "root", message)
        self.notifications.append(notification)
        if isinstance(notification, types.ToolListChangedNotification):
            self.changed.set()

    async def on_sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        self.sampling.append(params)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="sampled by the test client"),
            model="test-model",
            stop_reason="endTurn",
        )

    async def on_elicitation(self, context: ClientRequestContext, params: Any) -> types.ElicitResult:
        self.elicitations.append(params)
        return types.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})

    async def on_roots(self, context: ClientRequestContext) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///workspace", name="workspace")])


@asynccontextmanager
async def connect(
    deployment: Deployment, recorder: Recorder, *, replica: int = 0, header_token: bool = True
) -> AsyncIterator[ClientSession]:
    token = deployment.registration.access_token
    url = deployment.endpoint(replica)
    headers = {}
    if header_token:
        headers["Authorization"] = f"Bearer {token}"
    else:
        url = f"{url}?authorization={token}"
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(
            read,
            write,
            sampling_callback=recorder.on_sampling,
            elicitation_callback=recorder.on_elicitation,
            list_roots_callback=recorder.on_roots,
            logging_callback=recorder.on_log,
            message_handler=recorder.on_message,
        ) as session,
    ):
        await asyncio.wait_for(session.initialize(), WAIT)
        yield session


def texts(result: types.CallToolResult) -> list[str]:
    return [block.text for block in result.content if isinstance(block, types.TextContent)]


async def test_static_token_in_header_lists_and_calls_tools(deployment: Deployment) -> None:
    async with connect(deployment, Recorder()) as session:
        listed = await session.list_tools()
        names = {tool.name for tool in listed.tools}
        assert {"test_simple_text", "test_sampling", "test_tool_with_progress"} <= names
        simple = await session.call_tool("test_simple_text", {})
        assert texts(simple) == ["This is a simple text response for testing."]
        failing = await session.call_tool("test_error_handling", {})
        assert failing.is_error is True
        image = await session.call_tool("test_image_content", {})
        assert isinstance(image.content[0], types.ImageContent)
        assert image.content[0].mime_type == "image/png"


async def test_token_in_query_reads_resources_and_prompts(deployment: Deployment) -> None:
    async with connect(deployment, Recorder(), header_token=False) as session:
        text = await session.read_resource("test://static-text")
        assert text.contents[0].text == "This is the content of the static text resource."  # type: ignore[union-attr]
        templated = await session.read_resource("test://template/42/data")
        assert json.loads(templated.contents[0].text)["id"] == "42"  # type: ignore[union-attr]
        prompt = await session.get_prompt("test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
        assert prompt.messages[0].content.text == "Prompt with arguments: arg1='a', arg2='b'"  # type: ignore[union-attr]
        completion = await session.complete(
            types.PromptReference(type="ref/prompt", name="test_prompt_with_arguments"),
            {"name": "arg1", "value": "test"},
        )
        assert "testValue1" in completion.completion.values


def test_wrong_token_is_401_naming_the_problem_without_oauth_discovery(deployment: Deployment) -> None:
    """A static-token integration has no authorization server: its challenge carries no
    resource_metadata, so a client reports the token problem instead of trying OAuth registration."""
    answer = httpx.post(
        deployment.endpoint(0),
        headers={"Authorization": "Bearer sr_mcp_wrong", "Accept": "application/json, text/event-stream"},
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
    )
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith("Bearer realm=") and 'error="invalid_token"' in challenge
    assert "resource_metadata=" not in challenge
    assert answer.json()["error"]["message"] == "Unauthorized: invalid static access token"


# logging/setLevel is part of every revision we serve; the SDK warns only because 2026-07-28 drops it.
@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_logging_and_progress_reach_the_client(deployment: Deployment) -> None:
    recorder = Recorder()
    async with connect(deployment, recorder) as session:
        # Filtered first: at "error" the tool's info messages must not be sent at all.
        await session.set_logging_level("error")
        await session.call_tool("test_tool_with_logging", {})
        await session.set_logging_level("info")
        await session.call_tool("test_tool_with_logging", {})
        # The SDK may run callbacks after it resolved the call: wait for them (bounded).
        await until(lambda: len(recorder.logs) >= 3, WAIT)
        assert [log.data for log in recorder.logs] == [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed",
        ]
        progress: list[float] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        await session.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
        await until(lambda: len(progress) >= 3, WAIT)
        assert progress == [0, 50, 100]


async def test_sampling_elicitation_and_roots_callbacks_via_a_worker_tool(deployment: Deployment) -> None:
    recorder = Recorder()
    async with connect(deployment, recorder) as session:
        sampled = await session.call_tool("test_sampling", {"prompt": "What is 2+2?"})
        assert texts(sampled) == ["LLM response: sampled by the test client"]
        assert recorder.sampling[0].max_tokens == 100
        elicited = await session.call_tool("test_elicitation", {"message": "Who are you?"})
        assert texts(elicited)[0].startswith("User response: action=accept")
        assert recorder.elicitations[0].message == "Who are you?"
        roots = await session.call_tool("test_roots", {})
        assert roots.structured_content == {"roots": [{"uri": "file:///workspace", "name": "workspace"}]}


async def test_tools_list_changed_after_a_rest_change(deployment: Deployment) -> None:
    recorder = Recorder()
    registration = deployment.registration
    abilities = f"{deployment.stack.registry_url}/api/v1/skillset/{registration.skillset_id}/ability"
    auth = {"Authorization": f"Bearer {registration.api_key}"}
    async with connect(deployment, recorder, replica=1) as session, httpx.AsyncClient(headers=auth) as rest:
        await session.list_tools()
        created = await rest.post(
            f"{abilities}/create",
            json={
                "name": "added_later",
                "description": "Added while a session is open",
                "inputSchema": {"type": "object"},
                "handler": {"type": "static", "content": [{"type": "text", "text": "late"}]},
            },
        )
        assert created.status_code in (200, 201), created.text
        ability_id = created.json()["id"]
        # The SDK opens its GET stream in the background after initialize, and a notification only
        # reaches a stream that is open: change the ability again until one arrives (bounded).
        for attempt in range(int(WAIT / 0.5)):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(recorder.changed.wait(), 0.5)
                break
            updated = await rest.post(f"{abilities}/{ability_id}/update", json={"description": f"v{attempt}"})
            assert updated.status_code == 200, updated.text
        assert recorder.changed.is_set(), "no notifications/tools/list_changed arrived"
        listed = await session.list_tools()
        assert "added_later" in {tool.name for tool in listed.tools}
        assert texts(await session.call_tool("added_later", {})) == ["late"]


async def test_a_worker_ability_without_a_running_worker_fails_at_once(deployment: Deployment) -> None:
    registration = deployment.registration
    async with httpx.AsyncClient() as rest:
        created = await rest.post(
            f"{deployment.stack.registry_url}/api/v1/skillset/{registration.skillset_id}/ability/create",
            headers={"Authorization": f"Bearer {registration.api_key}"},
            json={
                "name": "served_by_nobody",
                "description": "A worker ability whose worker is not running",
                "inputSchema": {"type": "object"},
                "handler": {"type": "worker", "subject": "nobody-home", "timeoutMs": 60_000},
            },
        )
    assert created.status_code in (200, 201), created.text
    async with connect(deployment, Recorder()) as session:
        started = asyncio.get_running_loop().time()
        result = await session.call_tool("served_by_nobody", {})
        assert result.is_error is True
        assert "no worker is serving 'nobody-home'" in texts(result)[0]
        assert asyncio.get_running_loop().time() - started < 5.0  # not the ability's 60 s timeout


# --- raw HTTP: sessions across replicas, answers and resumption on the other replica -------------


def _headers(deployment: Deployment, session_id: str | None = None, **extra: str) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {deployment.registration.access_token}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": PROTOCOL,
        **extra,
    }
    if session_id:
        headers["Mcp-Session-Id"] = session_id
    return headers


def _open_session(client: httpx.Client, deployment: Deployment, replica: int) -> str:
    init = client.post(
        deployment.endpoint(replica),
        headers=_headers(deployment),
        json=initialize_request("raw", capabilities={"elicitation": {}, "sampling": {}}),
    )
    assert init.status_code == 200, init.text
    session_id = init.headers["mcp-session-id"]
    notified = client.post(
        deployment.endpoint(replica),
        headers=_headers(deployment, session_id),
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
    )
    assert notified.status_code == 202
    return session_id


def test_a_session_opened_on_one_replica_works_on_the_other(deployment: Deployment) -> None:
    with httpx.Client(timeout=WAIT) as client:
        session_id = _open_session(client, deployment, 0)
        listed = client.post(
            deployment.endpoint(1),
            headers=_headers(deployment, session_id, Accept="application/json, text/event-stream"),
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        )
        assert listed.status_code == 200
        body = (
            listed.json()
            if listed.headers["content-type"].startswith("application/json")
            else next(data for _, data in stream_events(iter(listed.text.splitlines())) if data)
        )
        assert any(tool["name"] == "test_simple_text" for tool in body["result"]["tools"])
        deleted = client.delete(deployment.endpoint(1), headers=_headers(deployment, session_id))
        assert deleted.status_code in (200, 202, 204)
        # The other replica learns of the DELETE through an event (its session cache is invalidated
        # asynchronously), so allow it a moment.
        deadline = time.monotonic() + 5.0
        while True:
            gone = client.post(
                deployment.endpoint(0),
                headers=_headers(deployment, session_id),
                json={"jsonrpc": "2.0", "id": 2, "method": "ping"},
            )
            if gone.status_code == 404 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert gone.status_code == 404


@contextlib.contextmanager
def _elicitation_asked(
    client: httpx.Client, deployment: Deployment, session_id: str, request_id: int, message: str
) -> Iterator[tuple[Iterator[tuple[str | None, dict[str, Any] | None]], dict[str, Any]]]:
    """``test_elicitation`` called on the first replica, its stream read up to the worker's
    ``elicitation/create``: yields the rest of the stream's events and that request."""
    call = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "test_elicitation", "arguments": {"message": message}},
    }
    with client.stream(
        "POST", deployment.endpoint(0), headers=_headers(deployment, session_id), json=call
    ) as sse:
        assert sse.status_code == 200
        assert sse.headers["content-type"].startswith("text/event-stream")
        events = stream_events(sse.iter_lines())
        request = next(data for _, data in events if data and data.get("method") == "elicitation/create")
        yield events, request


def test_elicitation_answer_posted_to_the_other_replica_reaches_the_worker(deployment: Deployment) -> None:
    with httpx.Client(timeout=WAIT) as client:
        session_id = _open_session(client, deployment, 0)
        with _elicitation_asked(client, deployment, session_id, 7, "Your name?") as (events, request):
            assert request["params"]["message"] == "Your name?"
            answered = client.post(
                deployment.endpoint(1),
                headers=_headers(deployment, session_id),
                json={
                    "jsonrpc": "2.0",
                    "id": request["id"],
                    "result": {
                        "action": "accept",
                        "content": {"username": "grace", "email": "g@example.com"},
                    },
                },
            )
            assert answered.status_code == 202
            result = next(data for _, data in events if data and data.get("id") == 7)
        assert "grace" in result["result"]["content"][0]["text"]


def test_a_broken_stream_resumes_on_the_other_replica(deployment: Deployment) -> None:
    with httpx.Client(timeout=WAIT) as client:
        session_id = _open_session(client, deployment, 0)
        # The connection is gone mid-call; the rest is replayed by the other replica.
        seen = resume_a_broken_call(
            client, deployment.endpoint(0), deployment.endpoint(1), _headers(deployment, session_id)
        )
        progress = [d["params"]["progress"] for d in seen if d.get("method") == "notifications/progress"]
        assert progress == [50, 100]
        assert seen[-1]["result"]["content"][0]["text"] == "p9"


def test_cancelling_on_the_other_replica_stops_the_worker_handler(deployment: Deployment) -> None:
    worker_log = next(Path(deployment.stack.log_dir or ".").glob(f"worker-{deployment.subject}.log"))
    cancelled_before = worker_log.read_text().count("worker.call.cancelled")
    with httpx.Client(timeout=WAIT) as client:
        session_id = _open_session(client, deployment, 0)
        with _elicitation_asked(client, deployment, session_id, 11, "Never answered") as (events, _):
            cancelled = client.post(
                deployment.endpoint(1),
                headers=_headers(deployment, session_id),
                json={"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 11}},
            )
            assert cancelled.status_code == 202
            # MCP: a cancelled request gets no response; the stream just ends.
            rest = [data for _, data in events if data]
        answers = [data for data in rest if data.get("id") == 11]
        assert answers == [], answers
    deadline = time.monotonic() + WAIT
    while worker_log.read_text().count("worker.call.cancelled") == cancelled_before:
        assert time.monotonic() < deadline, "the worker's handler was not cancelled"
        time.sleep(0.1)
