"""The endpoint's use cases with fakes: order of checks, sessions, batches, method families, and the
choice between a JSON answer and an SSE stream."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from skillrelay_common.schemas.base import NotFound, Unavailable
from skillrelay_common.schemas.registry import IntegrationInfo, IntegrationSnapshot
from skillrelay_devstack.edge import ability, demo_skillset
from skillrelay_devstack.testing import cyclic_garbage
from skillrelay_edge.abilities.static import StaticRunner
from skillrelay_edge.access.credentials import AuthFailure, Principal
from skillrelay_edge.calls.cancellation import InFlightCalls
from skillrelay_edge.calls.context import CallContext
from skillrelay_edge.calls.local_relay import LocalClientResponseRelay
from skillrelay_edge.integrations.catalog import Catalog
from skillrelay_edge.protocol import pagination
from skillrelay_edge.protocol.dispatcher import Dispatcher
from skillrelay_edge.protocol.scope import Services
from skillrelay_edge.sessions.local import LocalSessionManager
from skillrelay_edge.transport.endpoint import HttpAnswer, HttpInput, McpEndpoint
from skillrelay_edge.transport.rules import HttpRules

TOKEN = "good"


def _catalog(integration_id: str, session_mode: str = "strict") -> Catalog:
    skillset = demo_skillset()
    worker = {"type": "worker", "subject": "w"}
    skillset = msgspec.structs.replace(
        skillset,
        abilities=[*skillset.abilities, ability("talk", worker), ability("silent", worker)],
        resources=[
            *skillset.resources,
            msgspec.convert(
                {"id": "r_t", "name": "item", "uriTemplate": "test://items/{id}", "handler": worker},
                type(skillset.resources[0]),
            ),
        ],
    )
    info = IntegrationInfo(
        id=integration_id,
        owner_id="u",
        name="n",
        skillset_id=skillset.id,
        session_mode=session_mode,  # type: ignore[arg-type]
    )
    return Catalog.build(IntegrationSnapshot(integration=info, skillset=skillset))


class FakeCatalogs:
    def __init__(self) -> None:
        self.answers: dict[str, Catalog | NotFound | Unavailable] = {
            "mcpserver_1": _catalog("mcpserver_1"),
            "mcpserver_renew": _catalog("mcpserver_renew", "renew"),
        }

    async def get(self, integration_id: str) -> Catalog | NotFound | Unavailable:
        return self.answers.get(integration_id, NotFound())


class FakeVerifier:
    async def authenticate(
        self, integration: Any, header: str | None, query: str | None
    ) -> Principal | AuthFailure:
        if header == f"Bearer {TOKEN}" or query == TOKEN:
            return Principal("static", "static:v1", 1)
        return AuthFailure(401, "bad", 'Bearer resource_metadata="https://x"')


class FakeWorker:
    def __init__(self) -> None:
        self.contexts: list[CallContext] = []

    async def run(self, ctx: CallContext, handler: Any, arguments: dict[str, Any]) -> dict[str, Any]:
        self.contexts.append(ctx)
        if ctx.method == "resources/read":
            return {"contents": [{"uri": ctx.name, "text": f"item {arguments['id']}"}]}
        if ctx.name == "talk":
            await ctx.log("info", "working")
        return {"content": [{"type": "text", "text": ctx.name}]}


@pytest.fixture
def worker() -> FakeWorker:
    return FakeWorker()


@pytest.fixture
def endpoint(worker: FakeWorker) -> McpEndpoint:
    sessions = LocalSessionManager(None, ttl_seconds=60)
    return McpEndpoint(
        rules=HttpRules("http://edge.test", "127.0.0.1", 10_000),
        catalogs=FakeCatalogs(),
        verifier=FakeVerifier(),
        sessions=sessions,
        dispatcher=Dispatcher(
            Services(sessions=sessions, runners={"static": StaticRunner(), "worker": worker})
        ),
        relay=LocalClientResponseRelay(),
        store=None,
        streams=None,
        inflight=InFlightCalls(None),
    )


class StreamSink:
    """Stands in for the HTTP layer's ``send_stream``: keeps the SSE answers sent and their frames."""

    def __init__(self) -> None:
        self.answers: list[HttpAnswer] = []
        self.frames: list[bytes] = []
        self.opened = asyncio.Event()

    async def send(self, answer: HttpAnswer) -> None:
        assert answer.stream is not None
        self.answers.append(answer)
        self.opened.set()
        self.frames += [chunk async for chunk in answer.stream]


def _input(
    body: Any,
    *,
    integration: str = "mcpserver_1",
    session: str | None = None,
    token: str = TOKEN,
    sink: StreamSink | None = None,
    **headers: str,
) -> HttpInput:
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    all_headers = {
        "host": "edge.test",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "authorization": f"Bearer {token}",
        **headers,
    }
    if session:
        all_headers["mcp-session-id"] = session

    async def read() -> bytes:
        return raw

    return HttpInput(integration, all_headers, None, read, (sink or StreamSink()).send)


def _request(method: str, params: Any = None, request_id: int = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return body


def _json(answer: HttpAnswer) -> Any:
    assert answer.body is not None
    return msgspec.json.decode(answer.body)


async def _session(endpoint: McpEndpoint, version: str = "2025-06-18") -> str:
    answer = await endpoint.post(
        _input(_request("initialize", {"protocolVersion": version, "capabilities": {}}))
    )
    assert _json(answer)["result"]["protocolVersion"] == version
    return answer.headers["Mcp-Session-Id"]


async def test_credentials_are_checked_before_the_session(endpoint: McpEndpoint) -> None:
    answer = await endpoint.post(_input(_request("ping"), session="unknown", token="bad"))
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer ")
    assert (await endpoint.post(_input(_request("ping"), session="unknown"))).status == 404


async def test_renew_mode_issues_a_new_session(endpoint: McpEndpoint) -> None:
    answer = await endpoint.post(_input(_request("ping"), integration="mcpserver_renew", session="gone"))
    assert answer.status == 200
    assert answer.headers["Mcp-Session-Id"] != "gone"


async def test_a_session_is_bound_to_its_integration(endpoint: McpEndpoint) -> None:
    session = await _session(endpoint)
    assert (await endpoint.post(_input(_request("ping"), session=session))).status == 200
    other = await endpoint.post(_input(_request("ping"), integration="mcpserver_renew", session=session))
    assert other.headers["Mcp-Session-Id"] != session


async def test_integration_missing_or_registry_down(endpoint: McpEndpoint) -> None:
    assert (await endpoint.post(_input(_request("ping"), integration="mcpserver_x"))).status == 404
    endpoint.catalogs.answers["mcpserver_1"] = Unavailable()  # type: ignore[attr-defined]
    assert (await endpoint.post(_input(_request("ping")))).status == 503


async def test_batches(endpoint: McpEndpoint) -> None:
    session = await _session(endpoint, "2025-03-26")
    batch = [
        _request("ping", request_id=1),
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        _request("ping", request_id=2),
    ]
    old = await endpoint.post(_input(batch, session=session, **{"mcp-protocol-version": "2025-03-26"}))
    assert [item["id"] for item in _json(old)] == [1, 2]
    refused = await endpoint.post(_input(batch, session=session, **{"mcp-protocol-version": "2025-06-18"}))
    assert (refused.status, _json(refused)["error"]["code"]) == (400, -32600)
    # Regression: a session negotiated after 2025-03-26 took a batch when the header said 2025-03-26
    # (or said nothing).
    for version in ("2025-06-18", "2025-11-25"):
        later = await _session(endpoint, version)
        for headers in ({"mcp-protocol-version": "2025-03-26"}, {}):
            refused = await endpoint.post(_input(batch, session=later, **headers))
            assert (refused.status, _json(refused)["error"]["code"]) == (400, -32600), (version, headers)
    init_batch = [_request("initialize", {"protocolVersion": "2025-03-26"})]
    refused = await endpoint.post(_input(init_batch, **{"mcp-protocol-version": "2025-03-26"}))
    assert _json(refused)["error"]["code"] == -32600


async def test_a_batchs_calls_run_concurrently_and_answer_in_order(endpoint: McpEndpoint) -> None:
    session = await _session(endpoint, "2025-03-26")
    running: list[int] = []
    most = 0

    class Slow:
        async def run(self, ctx: CallContext, handler: Any, arguments: dict[str, Any]) -> dict[str, Any]:
            nonlocal most
            running.append(1)
            most = max(most, len(running))
            await asyncio.sleep(0.05)
            running.pop()
            return {"content": [{"type": "text", "text": str(ctx.request_id)}]}

    endpoint.dispatcher.services.runners["worker"] = Slow()  # type: ignore[index]
    batch = [_request("tools/call", {"name": "silent"}, request_id=n) for n in range(1, 13)]
    answered = await endpoint.post(_input(batch, session=session, **{"mcp-protocol-version": "2025-03-26"}))
    items = _json(answered)
    assert [item["id"] for item in items] == list(range(1, 13))
    assert [item["result"]["content"][0]["text"] for item in items] == [str(n) for n in range(1, 13)]
    assert 1 < most <= 8  # concurrent, but bounded


async def test_pagination(endpoint: McpEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pagination, "PAGE_SIZE", 3)
    session = await _session(endpoint)
    names: list[str] = []
    cursor = None
    while True:
        params = {"cursor": cursor} if cursor else {}
        result = _json(await endpoint.post(_input(_request("tools/list", params), session=session)))["result"]
        names += [tool["name"] for tool in result["tools"]]
        cursor = result.get("nextCursor")
        if cursor is None:
            break
    assert len(names) == len(set(names)) == 8
    bad = _json(await endpoint.post(_input(_request("tools/list", {"cursor": "nope"}), session=session)))
    assert bad["error"]["code"] == -32602


async def test_templated_resources_go_to_their_handler(endpoint: McpEndpoint, worker: FakeWorker) -> None:
    session = await _session(endpoint)
    answer = _json(
        await endpoint.post(_input(_request("resources/read", {"uri": "test://items/42"}), session=session))
    )
    assert answer["result"]["contents"][0]["text"] == "item 42"
    templates = _json(await endpoint.post(_input(_request("resources/templates/list"), session=session)))
    assert templates["result"]["resourceTemplates"][0]["uriTemplate"] == "test://items/{id}"


async def test_a_call_that_only_answers_is_json_and_one_that_talks_is_sse(
    endpoint: McpEndpoint, worker: FakeWorker
) -> None:
    session = await _session(endpoint)
    sink = StreamSink()
    call = _request("tools/call", {"name": "silent"})
    silent = await endpoint.post(_input(call, session=session, sink=sink))
    assert silent.media_type == "application/json" and silent.stream is None and not silent.sent
    assert _json(silent)["result"]["content"][0]["text"] == "silent" and sink.answers == []
    talk = await endpoint.post(_input(_request("tools/call", {"name": "talk"}), session=session, sink=sink))
    # The call's task returns once the SSE answer, sent meanwhile from another task, has ended.
    assert talk.sent and len(sink.answers) == 1
    assert sink.answers[0].media_type == "text/event-stream"
    assert sink.answers[0].headers["Cache-Control"] == "no-cache"
    assert b"notifications/message" in sink.frames[0] and b'"result"' in sink.frames[1]
    assert len(sink.frames) == 2
    assert worker.contexts[-1].session_id == session


async def test_a_finished_call_leaves_no_reference_cycle(endpoint: McpEndpoint, worker: FakeWorker) -> None:
    """A cycle would keep each request's objects alive until the cyclic GC ran: on the worker path it
    once cost a fifth of the edge's CPU time."""
    session = await _session(endpoint)
    requests = [
        _request("tools/call", {"name": "silent"}),
        _request("tools/call", {"name": "talk"}),
        _request("tools/call", {"name": "echo", "arguments": {"message": "hi"}}),
        _request("tools/call", {"name": "echo", "arguments": {}}),  # invalid arguments: isError
        _request("tools/call", {"name": "missing"}),  # -32602
        _request("tools/list"),
        _request("resources/list"),
        _request("resources/read", {"uri": "test://static-text"}),
        _request("resources/read", {"uri": "test://items/7"}),
        _request("prompts/get", {"name": "test_prompt_with_arguments", "arguments": {"arg1": "a"}}),
        _request("ping"),
        _request("no/such/method"),  # -32601
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        [_request("ping", request_id=1), _request("tools/list", request_id=2)],  # batch
        b"{not json",  # -32700
    ]
    with cyclic_garbage() as left:
        for body in requests:
            answer = await endpoint.post(_input(body, session=session))
            assert answer.status < 500
        worker.contexts.clear()
    assert left == []


async def test_a_streamed_answer_carries_a_renewed_session_id(endpoint: McpEndpoint) -> None:
    sink = StreamSink()
    call = _request("tools/call", {"name": "talk"})
    answer = await endpoint.post(_input(call, integration="mcpserver_renew", session="gone", sink=sink))
    assert answer.sent
    renewed = sink.answers[0].headers["Mcp-Session-Id"]
    assert renewed and renewed != "gone"


class WaitsForCancellation:
    """A runner that optionally logs first, then waits to be cancelled and answers anyway."""

    def __init__(self, talk_first: bool) -> None:
        self.talk_first = talk_first
        self.started = asyncio.Event()
        self.seen: list[CallContext] = []

    async def run(self, ctx: CallContext, handler: Any, arguments: dict[str, Any]) -> dict[str, Any]:
        self.seen.append(ctx)
        if self.talk_first:
            await ctx.log("info", "working")
        self.started.set()
        await asyncio.wait_for(ctx.cancelled.wait(), 5)
        return {"content": [{"type": "text", "text": "too late"}], "isError": True}


async def _cancel_call(endpoint: McpEndpoint, talk_first: bool) -> tuple[HttpAnswer, StreamSink]:
    session = await _session(endpoint)
    runner = WaitsForCancellation(talk_first)
    endpoint.dispatcher.services.runners["worker"] = runner  # type: ignore[index]
    sink = StreamSink()
    call = asyncio.ensure_future(
        endpoint.post(_input(_request("tools/call", {"name": "silent"}, 9), session=session, sink=sink))
    )
    await asyncio.wait_for(runner.started.wait(), 5)
    if talk_first:
        await asyncio.wait_for(sink.opened.wait(), 5)  # the stream is open once the call has talked
    assert not call.done()
    notice = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}}
    assert (await endpoint.post(_input(notice, session=session))).status == 202
    answer = await asyncio.wait_for(call, 5)
    assert runner.seen[0].cancelled.is_set()
    return answer, sink


async def test_a_call_cancelled_before_it_talked_ends_without_a_response(endpoint: McpEndpoint) -> None:
    answer, sink = await _cancel_call(endpoint, talk_first=False)
    assert answer.status == 200 and answer.media_type == "text/event-stream"
    assert answer.body == b"" and answer.stream is None and not answer.sent
    assert sink.answers == []


async def test_a_cancelled_sse_call_ends_its_stream_without_a_response(endpoint: McpEndpoint) -> None:
    answer, sink = await _cancel_call(endpoint, talk_first=True)
    assert answer.sent
    body = b"".join(sink.frames)
    assert b"notifications/message" in body
    assert b'"result"' not in body and b'"error"' not in body, body


class GoneAfterFirstFrame(StreamSink):
    """A client that reads one frame of its SSE answer and goes away."""

    async def send(self, answer: HttpAnswer) -> None:
        assert answer.stream is not None
        self.answers.append(answer)
        self.frames.append(await anext(aiter(answer.stream)))
        self.opened.set()


async def test_a_stopping_edge_leaves_streamed_calls_whose_clients_have_gone(endpoint: McpEndpoint) -> None:
    session = await _session(endpoint)
    runner = WaitsForCancellation(talk_first=True)
    endpoint.dispatcher.services.runners["worker"] = runner  # type: ignore[index]
    gone, connected = GoneAfterFirstFrame(), StreamSink()
    left = asyncio.ensure_future(
        endpoint.post(_input(_request("tools/call", {"name": "silent"}, 1), session=session, sink=gone))
    )
    kept = asyncio.ensure_future(
        endpoint.post(_input(_request("tools/call", {"name": "silent"}, 2), session=session, sink=connected))
    )
    await asyncio.wait_for(asyncio.gather(gone.opened.wait(), connected.opened.wait()), 5)
    await asyncio.sleep(0)  # the gone client's answer task ends
    endpoint.leave()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(left, 5)
    # Left to the worker and another replica, not cancelled as the client would cancel it.
    assert not runner.seen[0].cancelled.is_set()
    assert not kept.done()  # a connected client's call goes on to its end
    notice = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}}
    assert (await endpoint.post(_input(notice, session=session))).status == 202
    assert (await asyncio.wait_for(kept, 5)).sent


async def test_a_failing_runner_is_an_internal_error_not_a_crash(endpoint: McpEndpoint) -> None:
    class Broken:
        async def run(self, ctx: CallContext, handler: Any, arguments: dict[str, Any]) -> dict[str, Any]:
            raise RuntimeError("boom with a secret inside")

    endpoint.dispatcher.services.runners["worker"] = Broken()  # type: ignore[index]
    session = await _session(endpoint)
    answer = _json(await endpoint.post(_input(_request("tools/call", {"name": "silent"}), session=session)))
    assert answer["error"] == {"code": -32603, "message": "Internal error"}


async def test_sessions_service_down_is_503(endpoint: McpEndpoint) -> None:
    class Down(LocalSessionManager):
        async def resolve(self, session_id: str, integration_id: str, principal: str) -> Any:
            raise ConnectionError("sessions unreachable")

        async def open(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("sessions unreachable")

    endpoint.sessions = Down(None, ttl_seconds=60)
    assert (await endpoint.post(_input(_request("ping"), session="any"))).status == 503
    assert (await endpoint.post(_input(_request("ping")))).status == 503
    get = HttpInput(
        "mcpserver_1", {**_input({}).headers, "accept": "text/event-stream", "mcp-session-id": "x"}
    )
    assert (await endpoint.get(get)).status == 503
    delete = HttpInput("mcpserver_1", {**_input({}).headers, "mcp-session-id": "x"})
    assert (await endpoint.delete(delete)).status == 503
