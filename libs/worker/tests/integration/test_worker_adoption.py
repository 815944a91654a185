"""The worker SDK's side of adoption over a real nats-server: sequenced events, an answer that finds no
edge (NATS "no responders") kept for adoption, ``WorkerAdopt`` replaying what the new edge missed, and
a client request answered by the adopting edge. The "edges" here are plain NATS subscriptions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import nats.errors
import pytest
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from skillrelay_common.messaging import Bus, encode
from skillrelay_devstack.testing import gated_counter_worker, until
from skillrelay_worker import Worker, WorkerContext
from skillrelay_worker.protocol import (
    WorkerAdopt,
    WorkerAdopted,
    WorkerCall,
    WorkerClientAnswer,
    WorkerClientRequest,
    WorkerEvent,
    WorkerHeartbeat,
    WorkerProgress,
    WorkerResult,
)
from skillrelay_worker.subjects import (
    worker_adopt_subject,
    worker_call_subject,
    worker_events_subject,
    worker_events_wildcard,
)

_events = msgspec.json.Decoder(WorkerEvent | WorkerClientRequest)
# The owner the test workers serve (they connect with the service credentials, as a trusted worker).
OWNER = "user_adoption"


class FakeEdge:
    """Collects a call's sequenced events (heartbeats dropped) on ``workerev.<key>.*.*``."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.key = uuid.uuid4().hex[:12]
        self.events: asyncio.Queue[tuple[Any, Msg]] = asyncio.Queue()
        self.subscription: Subscription | None = None

    async def attach(self) -> FakeEdge:
        async def on_event(msg: Msg) -> None:
            if not msg.data:
                return  # a status message
            event = _events.decode(msg.data)
            if not isinstance(event, WorkerHeartbeat):
                self.events.put_nowait((event, msg))

        self.subscription = await self.bus.nc.subscribe(worker_events_wildcard(self.key), cb=on_event)
        await self.bus.nc.flush()
        return self

    async def die(self) -> None:
        assert self.subscription is not None
        await self.subscription.unsubscribe()
        await self.bus.nc.flush()

    def subject(self, call_id: str) -> str:
        return worker_events_subject(self.key, OWNER, call_id)

    async def next(self, timeout: float = 15.0) -> tuple[Any, Msg]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def call(self, subject: str, call_id: str, name: str, **args: Any) -> None:
        call = WorkerCall(call_id=call_id, ability_kind="tool", name=name, arguments=args, progress_token=1)
        await self.bus.nc.publish(
            worker_call_subject(OWNER, subject), encode(call), reply=self.subject(call_id)
        )

    async def adopt(self, call_id: str, after_seq: int, timeout: float = 10.0) -> WorkerAdopted:
        request = WorkerAdopt(call_id=call_id, events_subject=self.subject(call_id), after_seq=after_seq)
        reply = await self.bus.nc.request(worker_adopt_subject(OWNER), encode(request), timeout=timeout)
        return msgspec.json.decode(reply.data, type=WorkerAdopted)


@pytest.fixture
async def edges(nats_url: str) -> AsyncIterator[tuple[FakeEdge, FakeEdge]]:
    bus = await Bus.connect(nats_url, "edge")
    yield await FakeEdge(bus).attach(), await FakeEdge(bus).attach()
    await bus.close()


@pytest.fixture
async def worker(nats_url: str) -> AsyncIterator[tuple[Worker, asyncio.Event]]:
    running, gate = gated_counter_worker(f"adopt{uuid.uuid4().hex[:8]}")

    @running.tool("ask")
    async def ask(ctx: WorkerContext, args: dict[str, Any]) -> str:
        answer = await ctx.elicit("name?", {"type": "object"}, timeout=10)
        return f"hello {answer['content']['name']}"

    await running.start(nats_url, owner_id=OWNER)
    yield running, gate
    await running.stop()


def seqs(events: list[tuple[Any, Msg]]) -> list[int]:
    return [event.seq for event, _ in events]


async def test_an_answer_nobody_received_is_kept_and_replayed_to_the_adopting_edge(
    edges: tuple[FakeEdge, FakeEdge], worker: tuple[Worker, asyncio.Event]
) -> None:
    holder, adopter = edges
    running, gate = worker
    await holder.call(running.subject, "c1", "count")
    first = [await holder.next(), await holder.next()]
    assert seqs(first) == [1, 2]
    await holder.die()
    gate.set()
    # Progress 3 and the result reach nobody: "no responders" for the result keeps the call.
    await until(lambda: "c1" in running._undelivered, 15.0)

    adopted = await adopter.adopt("c1", after_seq=1)
    assert adopted == WorkerAdopted(call_id="c1", last_seq=4)
    replayed = [await adopter.next() for _ in range(3)]
    assert seqs(replayed) == [2, 3, 4]
    assert [type(event) for event, _ in replayed] == [WorkerProgress, WorkerProgress, WorkerResult]
    assert replayed[-1][0].result == {"content": [{"type": "text", "text": "counted"}]}
    assert "c1" not in running._undelivered  # taken; its answer was delivered this time


async def test_a_running_call_sends_later_events_to_the_adopting_edge_only(
    edges: tuple[FakeEdge, FakeEdge], worker: tuple[Worker, asyncio.Event]
) -> None:
    holder, adopter = edges
    running, gate = worker
    await holder.call(running.subject, "c2", "count")
    assert seqs([await holder.next(), await holder.next()]) == [1, 2]
    assert (await adopter.adopt("c2", after_seq=2)).last_seq == 2
    gate.set()
    assert seqs([await adopter.next(), await adopter.next()]) == [3, 4]
    assert holder.events.empty()


async def test_a_client_request_is_republished_and_answered_by_the_adopting_edge(
    edges: tuple[FakeEdge, FakeEdge], worker: tuple[Worker, asyncio.Event]
) -> None:
    holder, adopter = edges
    running, _ = worker
    await holder.call(running.subject, "c3", "ask")
    request, _ = await holder.next()
    assert isinstance(request, WorkerClientRequest) and request.seq == 1
    await holder.die()  # the client's answer never comes through this edge

    await adopter.adopt("c3", after_seq=0)
    again, msg = await adopter.next()
    assert again == request and msg.reply
    answer = WorkerClientAnswer(call_id="c3", result={"action": "accept", "content": {"name": "ada"}})
    await adopter.bus.nc.publish(msg.reply, encode(answer))
    result, _ = await adopter.next()
    assert result == WorkerResult(
        call_id="c3", seq=2, result={"content": [{"type": "text", "text": "hello ada"}]}
    )


async def test_nobody_answers_an_adoption_of_an_unknown_call(
    edges: tuple[FakeEdge, FakeEdge], worker: tuple[Worker, asyncio.Event]
) -> None:
    _, adopter = edges
    # No reply: a timeout, or "no responders" (nats-server may say so for a worker that subscribed a
    # moment ago); the edge reads both as "nobody holds the call".
    with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        await adopter.adopt("nobody-holds-this", after_seq=0, timeout=0.5)


async def test_a_delivered_answer_is_not_kept_and_undelivered_ones_expire(
    nats_url: str, edges: tuple[FakeEdge, FakeEdge]
) -> None:
    holder, _ = edges
    running = Worker(f"adopt{uuid.uuid4().hex[:8]}", adopt_grace=0.5, adopt_max_calls=2)

    @running.tool("echo")
    async def echo(ctx: WorkerContext, args: dict[str, Any]) -> str:
        return "echo"

    await running.start(nats_url, owner_id=OWNER)
    try:
        await holder.call(running.subject, "d1", "echo")
        assert seqs([await holder.next()]) == [1]
        await holder.die()
        for call_id in ("u1", "u2", "u3"):
            await holder.call(running.subject, call_id, "echo")
        await until(lambda: len(running._undelivered) == 2, 15.0)
        await asyncio.sleep(0.1)
        assert list(running._undelivered) == ["u2", "u3"]  # bounded: the oldest was dropped
        assert "d1" not in running._undelivered
        # Past the grace, the once-a-second sweep forgets them.
        await until(lambda: not (running._undelivered or running._finished or running._finished_before))
    finally:
        await running.stop()
