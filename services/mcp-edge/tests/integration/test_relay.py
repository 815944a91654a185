"""The client's answer to a server-to-client request reaches the waiting replica, whichever replica the
client POSTs it to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from skillrelay_common.messaging import Bus
from skillrelay_edge.calls.relay import NatsClientResponseRelay


@pytest.fixture
async def replicas(nats_url: str) -> AsyncIterator[tuple[NatsClientResponseRelay, NatsClientResponseRelay]]:
    buses = [await Bus.connect(nats_url, "edge") for _ in range(2)]
    relays = (NatsClientResponseRelay(buses[0]), NatsClientResponseRelay(buses[1]))
    for relay in relays:
        await relay.start()
    yield relays
    for relay, bus in zip(relays, buses, strict=True):
        await relay.stop()
        await bus.close()


async def test_answer_posted_to_another_replica_reaches_the_waiter(
    replicas: tuple[NatsClientResponseRelay, NatsClientResponseRelay],
) -> None:
    holder, other = replicas
    request_id = holder.new_request_id()
    assert request_id.startswith(f"srv-{holder.edge_key}-")
    waiter = holder.expect("session-1", request_id)
    await other.deliver_client_response(
        "session-1", {"jsonrpc": "2.0", "id": request_id, "result": {"action": "accept"}}
    )
    assert await asyncio.wait_for(waiter, 2.0) == {
        "jsonrpc": "2.0",
        "id": request_id,
        "result": {"action": "accept"},
    }
    assert holder.pending == 0


async def test_errors_and_foreign_ids_are_relayed_by_broadcast(
    replicas: tuple[NatsClientResponseRelay, NatsClientResponseRelay],
) -> None:
    holder, other = replicas
    waiter = holder.expect("session-1", 42)
    error = {"code": -32601, "message": "no sampling here"}
    await other.deliver_client_response("session-1", {"jsonrpc": "2.0", "id": 42, "error": error})
    assert await asyncio.wait_for(waiter, 2.0) == {"jsonrpc": "2.0", "id": 42, "error": error}


async def test_the_same_replica_answers_locally(
    replicas: tuple[NatsClientResponseRelay, NatsClientResponseRelay],
) -> None:
    holder, _ = replicas
    request_id = holder.new_request_id()
    waiter = holder.expect("session-1", request_id)
    message = {"jsonrpc": "2.0", "id": request_id, "result": {}}
    await holder.deliver_client_response("session-1", message)
    assert await asyncio.wait_for(waiter, 1.0) == message


async def test_another_session_cannot_answer(
    replicas: tuple[NatsClientResponseRelay, NatsClientResponseRelay],
) -> None:
    holder, other = replicas
    request_id = holder.new_request_id()
    waiter = holder.expect("session-1", request_id)
    await other.deliver_client_response("session-2", {"jsonrpc": "2.0", "id": request_id, "result": {}})
    # The rightful answer still resolves it afterwards: the foreign one was ignored.
    await other.deliver_client_response(
        "session-1", {"jsonrpc": "2.0", "id": request_id, "result": {"ok": 1}}
    )
    assert (await asyncio.wait_for(waiter, 2.0))["result"] == {"ok": 1}


async def test_forgotten_waiters_ignore_late_answers(
    replicas: tuple[NatsClientResponseRelay, NatsClientResponseRelay],
) -> None:
    holder, other = replicas
    request_id = holder.new_request_id()
    waiter = holder.expect("session-1", request_id)
    holder.forget("session-1", request_id)
    assert holder.pending == 0
    await other.deliver_client_response("session-1", {"jsonrpc": "2.0", "id": request_id, "result": {}})
    assert asyncio.ensure_future(waiter).cancelled()
