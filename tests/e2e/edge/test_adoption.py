"""Adoption over real NATS, PostgreSQL (sessions) and two edge replicas: a client resuming a request
stream whose holding replica is dead gets the rest of the call from a worker that still holds it.

The dead replica is played by the test: it stored some events of a stream and the call record naming
itself (a key nobody answers for), and its worker call's events went nowhere.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest
from nats.aio.msg import Msg

from skillrelay_common.messaging import Bus, encode
from skillrelay_devstack.edge import (
    DEMO_OWNER,
    ControlPlane,
    EdgeHarness,
    ability,
    demo_skillset,
    mcp_headers,
    sse_events,
    two_replicas,
)
from skillrelay_devstack.raw_mcp import initialize_request
from skillrelay_devstack.testing import create_database_now, gated_counter_worker, until
from skillrelay_edge.calls.call_records import CallRecord, CallRecords
from skillrelay_edge.calls.context import CALL_LOST_MESSAGE
from skillrelay_edge.calls.sse import EventStore
from skillrelay_edge.transport import jsonrpc
from skillrelay_worker import Worker
from skillrelay_worker.protocol import WorkerCall
from skillrelay_worker.subjects import worker_adopt_subject, worker_call_subject, worker_events_subject

SUBJECT = f"adopt{uuid.uuid4().hex[:8]}"
INTEGRATION = "mcpserver_adopt"
DEAD = "dead00000000"  # the key of a replica nobody answers for
VERSION = "2025-11-25"


@pytest.fixture(scope="module")
def control() -> ControlPlane:
    skillset = demo_skillset("skillset_adopt")
    count = ability("count", {"type": "worker", "subject": SUBJECT, "timeoutMs": 10_000})
    plane = ControlPlane()
    plane.add(INTEGRATION, msgspec.structs.replace(skillset, abilities=[*skillset.abilities, count]))
    return plane


@pytest.fixture(scope="module")
def edges(nats_url: str, postgres_admin_url: str, control: ControlPlane) -> Iterator[list[EdgeHarness]]:
    with two_replicas(nats_url, control, create_database_now(postgres_admin_url)) as replicas:
        yield replicas


@pytest.fixture
async def worker(nats_url: str) -> AsyncIterator[tuple[Worker, asyncio.Event]]:
    running, gate = gated_counter_worker(SUBJECT)

    await running.start(nats_url, owner_id=DEMO_OWNER)
    yield running, gate
    await running.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


async def _session(http: httpx.AsyncClient, url: str) -> str:
    response = await http.post(url, headers=mcp_headers(), json=initialize_request())
    assert response.status_code == 200, response.text
    return response.headers["mcp-session-id"]


async def _resume(http: httpx.AsyncClient, url: str, session: str, last_event_id: str) -> list[Any]:
    headers = mcp_headers(session, accept="text/event-stream", **{"last-event-id": last_event_id})
    response = await asyncio.wait_for(http.get(url, headers=headers), 20)
    assert response.status_code == 200, response.text
    return [data for _, data in sse_events(response.text)]


class DeadReplica:
    """What a replica left behind when it was killed: a call record and the events it stored."""

    def __init__(self, bus: Bus, session: str) -> None:
        self.bus = bus
        self.session = session
        self.stream_id = secrets.token_hex(8)
        self.store = EventStore(bus)
        self.records = CallRecords(bus)

    async def record(self, call_id: str | None, method: str = "tools/call", **params: Any) -> None:
        record = CallRecord(
            holder=DEAD,
            call_id=call_id,
            method=method,
            params=params,
            request_id=5,
            protocol_version=VERSION,
        )
        await self.records.put(self.session, self.stream_id, record)

    async def stored_progress(self, step: int) -> str:
        note = jsonrpc.notification(
            "notifications/progress", {"progressToken": "p", "progress": step, "total": 3}
        )
        return await self.store.append(self.session, self.stream_id, jsonrpc.encode(note), worker_seq=step)

    async def start_worker_call(self, call_id: str) -> None:
        """The call as the dead replica sent it: its events now reach nobody."""
        call = WorkerCall(
            call_id=call_id, ability_kind="tool", name="count", progress_token="p", timeout_ms=10_000
        )
        await self.bus.nc.publish(
            worker_call_subject(DEMO_OWNER, SUBJECT),
            encode(call),
            reply=worker_events_subject(DEAD, DEMO_OWNER, call_id),
        )


def _progress(messages: list[Any]) -> list[float]:
    return [m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"]


async def test_a_finished_undelivered_call_reaches_the_client_on_another_replica(
    edges: list[EdgeHarness], http: httpx.AsyncClient, bus: Bus, worker: tuple[Worker, asyncio.Event]
) -> None:
    running, gate = worker
    url = edges[1].mcp_url(INTEGRATION)
    dead = DeadReplica(bus, await _session(http, url))
    await dead.record("call-finished", name="count", arguments={}, _meta={"progressToken": "p"})
    await dead.start_worker_call("call-finished")
    seen = await dead.stored_progress(1)
    await dead.stored_progress(2)  # stored, not yet read by the client
    gate.set()
    await until(lambda: "call-finished" in running._undelivered)  # its answer found nobody: kept

    messages = await _resume(http, url, dead.session, seen)
    assert _progress(messages) == [2, 3]  # the stored one, then the rest from the worker: no duplicate
    assert messages[-1] == {
        "jsonrpc": "2.0",
        "id": 5,
        "result": {"content": [{"type": "text", "text": "counted"}]},
    }


async def test_a_call_nobody_holds_ends_with_an_error_result(
    edges: list[EdgeHarness], http: httpx.AsyncClient, bus: Bus, worker: tuple[Worker, asyncio.Event]
) -> None:
    url = edges[0].mcp_url(INTEGRATION)
    dead = DeadReplica(bus, await _session(http, url))
    await dead.record("call-nobody-holds", name="count", arguments={})
    seen = await dead.stored_progress(1)
    messages = await _resume(http, url, dead.session, seen)
    assert messages[-1]["id"] == 5
    assert messages[-1]["result"] == {
        "content": [{"type": "text", "text": CALL_LOST_MESSAGE}],
        "isError": True,
    }


async def test_a_call_that_is_not_a_worker_call_ends_with_a_json_rpc_error(
    edges: list[EdgeHarness], http: httpx.AsyncClient, bus: Bus
) -> None:
    url = edges[0].mcp_url(INTEGRATION)
    dead = DeadReplica(bus, await _session(http, url))
    await dead.record(None, method="prompts/get", name="test_prompt_with_arguments")
    seen = await dead.stored_progress(1)
    messages = await _resume(http, url, dead.session, seen)
    assert messages[-1] == {
        "jsonrpc": "2.0",
        "id": 5,
        "error": {"code": -32603, "message": CALL_LOST_MESSAGE},
    }


async def test_two_replicas_resuming_at_once_adopt_the_call_once(
    edges: list[EdgeHarness], http: httpx.AsyncClient, bus: Bus, worker: tuple[Worker, asyncio.Event]
) -> None:
    _, gate = worker
    urls = [edge.mcp_url(INTEGRATION) for edge in edges]
    dead = DeadReplica(bus, await _session(http, urls[0]))
    await dead.record("call-raced", name="count", arguments={}, _meta={"progressToken": "p"})
    await dead.start_worker_call("call-raced")
    seen = await dead.stored_progress(1)
    adopts: list[Msg] = []

    async def on_adopt(msg: Msg) -> None:
        adopts.append(msg)

    watching = await bus.nc.subscribe(worker_adopt_subject(DEMO_OWNER), cb=on_adopt)
    try:
        resumed = [asyncio.create_task(_resume(http, url, dead.session, seen)) for url in urls]
        await asyncio.sleep(1.0)  # both followers are watching; the call still runs
        gate.set()
        both = await asyncio.gather(*resumed)
    finally:
        await watching.unsubscribe()
    assert len(adopts) == 1
    for messages in both:
        # The holder stored progress 1 only: the worker replays 2 and sends 3, each stored once.
        assert _progress(messages) == [2, 3]
        assert messages[-1]["result"]["content"][0]["text"] == "counted"
    found = await CallRecords(bus).get(dead.session, dead.stream_id)
    assert found is not None and found[0].holder != DEAD


async def test_a_replica_shutting_down_leaves_its_worker_call_to_another(
    nats_url: str,
    control: ControlPlane,
    edges: list[EdgeHarness],
    http: httpx.AsyncClient,
    worker: tuple[Worker, asyncio.Event],
) -> None:
    _, gate = worker
    leaving = EdgeHarness(nats_url, control, local_sessions=False)  # sessions served by edges[0]
    leaving.start()
    url = leaving.mcp_url(INTEGRATION)
    session = await _session(http, url)
    call = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {"name": "count", "arguments": {}, "_meta": {"progressToken": "p"}},
    }
    seen = None
    async with http.stream("POST", url, headers=mcp_headers(session), json=call) as response:
        async for line in response.aiter_lines():
            if line.startswith("id: ") and not line.endswith("-0"):  # progress 1, past the priming event
                seen = line[4:]
                break
    assert seen is not None
    await asyncio.to_thread(leaving.stop)  # graceful: no WorkerCancel for the calls it held
    gate.set()
    messages = await _resume(http, edges[0].mcp_url(INTEGRATION), session, seen)
    assert _progress(messages) == [2, 3]
    assert messages[-1]["result"]["content"][0]["text"] == "counted"
