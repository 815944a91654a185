"""The listening streams' lean path: the slotted mailbox a stream waits on (a fan-out writes straight
to an idle stream's connection, queues otherwise, in order, and cuts off a client that stops
reading), and the HTTP side that sends a stream's frames from the request's own task and ends it
through its mailbox when the client goes (no task cancelled, one watcher task, nothing left behind)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from skillrelay_edge.transport.endpoint import HttpAnswer
from skillrelay_edge.transport.mailbox import PENDING_LIMIT, Mailbox
from skillrelay_edge.transport.mcp_api import _send_stream

LONG = 3600.0  # a keep-alive interval no test waits out


async def test_items_come_out_in_order_and_an_idle_mailbox_keeps_nothing() -> None:
    box: Mailbox[str] = Mailbox()
    box.push("a")
    box.push("b")
    assert await box.next(LONG) == "a"
    assert await box.next(LONG) == "b"
    assert box._pending is None  # drained: an idle stream holds no list


async def test_next_wakes_when_an_item_is_pushed_while_it_waits() -> None:
    box: Mailbox[str] = Mailbox()
    waiting = asyncio.create_task(box.next(LONG))
    await asyncio.sleep(0)
    box.push("late")
    assert await waiting == "late"
    assert box._waiter is None


async def test_next_returns_none_when_the_keepalive_is_due() -> None:
    box: Mailbox[str] = Mailbox()
    assert await box.next(0.01) is None
    assert not box.ended


async def test_end_hands_out_what_was_queued_then_none_and_refuses_more() -> None:
    box: Mailbox[str] = Mailbox()
    box.push("queued")
    box.end()
    box.push("after the end")
    assert await box.next(LONG) == "queued"
    assert await box.next(LONG) is None
    assert box.ended


async def test_end_wakes_a_waiting_consumer() -> None:
    box: Mailbox[str] = Mailbox()
    waiting = asyncio.create_task(box.next(LONG))
    await asyncio.sleep(0)
    box.end()
    assert await waiting is None


class FakeWriter:
    """A connection a fan-out may write to: takes bytes while ``open``; records an abort."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.open = True
        self.aborted = False

    def write_now(self, data: bytes) -> bool:
        if self.open:
            self.written.append(data)
        return self.open

    def abort(self) -> None:
        self.aborted = True


async def _waiting(box: Mailbox[str]) -> asyncio.Task[str | None]:
    task = asyncio.create_task(box.next(LONG))
    await asyncio.sleep(0)
    return task


async def test_offer_writes_straight_to_an_idle_stream_and_leaves_its_task_asleep() -> None:
    box: Mailbox[str] = Mailbox()
    writer = FakeWriter()
    box.attach(writer)
    waiting = await _waiting(box)
    box.offer("first", b"frame 1")
    box.offer("second", b"frame 2")
    await asyncio.sleep(0)
    assert writer.written == [b"frame 1", b"frame 2"]
    assert not waiting.done()  # nothing woke the stream's task
    assert box._pending is None
    box.push("queued")
    assert await waiting == "queued"


async def test_offer_queues_in_order_while_the_connection_does_not_take_bytes() -> None:
    box: Mailbox[str] = Mailbox()
    writer = FakeWriter()
    box.attach(writer)
    waiting = await _waiting(box)
    box.offer("1", b"1")  # written
    writer.open = False  # e.g. paused by back-pressure
    box.offer("2", b"2")  # queued, and the task woken to send it itself
    writer.open = True
    box.offer("3", b"3")  # queued behind 2 although the connection takes bytes again
    assert writer.written == [b"1"]
    assert await waiting == "2"
    assert await box.next(LONG) == "3"
    assert box._pending is None


async def test_offer_queues_while_the_stream_is_busy_or_has_no_connection() -> None:
    box: Mailbox[str] = Mailbox()
    box.offer("no writer", b"x")  # nothing attached (another server, or the response not started)
    writer = FakeWriter()
    box.attach(writer)
    box.offer("busy", b"y")  # the task is not waiting (e.g. sending the previous frame)
    assert writer.written == []
    assert await box.next(LONG) == "no writer"
    assert await box.next(LONG) == "busy"
    box.attach(None)
    waiting = await _waiting(box)
    box.offer("detached", b"z")
    assert await waiting == "detached"
    assert writer.written == []


async def test_offer_to_an_ended_stream_sends_nothing() -> None:
    box: Mailbox[str] = Mailbox()
    writer = FakeWriter()
    box.attach(writer)
    waiting = await _waiting(box)
    box.end()
    box.offer("late", b"late")
    assert await waiting is None
    assert writer.written == []


async def test_a_client_that_stops_reading_is_cut_off_at_the_queue_limit() -> None:
    box: Mailbox[str] = Mailbox()
    writer = FakeWriter()
    writer.open = False  # the client stopped reading: its connection takes nothing
    box.attach(writer)
    for n in range(PENDING_LIMIT):
        box.offer(str(n), b"")
    assert not box.ended and box._pending is not None and len(box._pending) == PENDING_LIMIT
    box.offer("one too many", b"")
    assert box.ended
    assert box._pending is None  # what was queued is dropped: memory stays bounded
    assert writer.aborted  # and the connection with it (the client reconnects, or resumes)
    assert await box.next(LONG) is None


class FakeClient:
    """The ASGI ``receive``/``send`` of one GET: the request, then (when told) the disconnect."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.gone = asyncio.Event()
        self._requested = False

    async def receive(self) -> dict[str, Any]:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


def _stream(box: Mailbox[bytes], finished: list[str]) -> AsyncIterator[bytes]:
    async def frames() -> AsyncIterator[bytes]:
        try:
            yield b": open\n\n"
            while True:
                item = await box.next(LONG)
                if item is None:
                    return
                yield item
        finally:
            finished.append("closed")

    return frames()


async def test_a_client_going_away_ends_its_stream_through_stop_and_leaves_no_task() -> None:
    box: Mailbox[bytes] = Mailbox()
    finished: list[str] = []
    client = FakeClient()
    stream = _stream(box, finished)
    answer = HttpAnswer(200, None, {"Cache-Control": "no-cache"}, stream, "text/event-stream", listening=box)
    before = asyncio.all_tasks()
    serving = asyncio.create_task(_send_stream(client.send, client.receive, answer))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    box.push(b"data: 1\n\n")
    await asyncio.sleep(0.01)
    assert len(asyncio.all_tasks() - before) == 2  # the request's task and one watcher, no more
    client.gone.set()
    await serving
    assert box.ended
    assert finished == ["closed"]
    assert client.sent[0]["type"] == "http.response.start"
    assert (b"cache-control", b"no-cache") in client.sent[0]["headers"]
    assert client.bodies() == [b": open\n\n", b"data: 1\n\n", b""]
    assert asyncio.all_tasks() - before == set()


async def test_a_stream_the_server_ends_finishes_the_response_and_stops_watching() -> None:
    box: Mailbox[bytes] = Mailbox()
    finished: list[str] = []
    client = FakeClient()
    stream = _stream(box, finished)
    answer = HttpAnswer(200, None, {}, stream, "text/event-stream", listening=box)
    before = asyncio.all_tasks()
    serving = asyncio.create_task(_send_stream(client.send, client.receive, answer))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    box.end()  # e.g. the session was closed
    await serving
    assert finished == ["closed"]
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert asyncio.all_tasks() - before == set()


class BlockingClient(FakeClient):
    """A client that does not read: each body write waits until the connection is dropped, which
    is then reported as ``http.disconnect``."""

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and message["body"] == b"stuck":
            await self.gone.wait()


class DroppingWriter(FakeWriter):
    def __init__(self, client: FakeClient) -> None:
        super().__init__()
        self.client = client

    def abort(self) -> None:
        super().abort()
        self.client.gone.set()


async def test_a_fan_out_writes_to_the_connection_once_the_response_started_and_not_after_it_ended() -> None:
    box: Mailbox[bytes] = Mailbox()
    finished: list[str] = []
    client = FakeClient()
    writer = FakeWriter()
    answer = HttpAnswer(200, None, {}, _stream(box, finished), "text/event-stream", listening=box)
    serving = asyncio.create_task(_send_stream(client.send, client.receive, answer, writer))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    box.offer(b"data: direct\n\n", b"data: direct\n\n")
    await asyncio.sleep(0.01)
    assert writer.written == [b"data: direct\n\n"]  # after the start and the opening frame
    assert client.bodies() == [b": open\n\n"]
    box.end()
    await serving
    box.offer(b"late", b"late")
    assert writer.written == [b"data: direct\n\n"]
    assert box._writer is None
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_a_stream_whose_client_stops_reading_ends_with_its_connection_dropped() -> None:
    box: Mailbox[bytes] = Mailbox()
    finished: list[str] = []
    client = BlockingClient()
    writer = DroppingWriter(client)
    answer = HttpAnswer(200, None, {}, _stream(box, finished), "text/event-stream", listening=box)
    before = asyncio.all_tasks()
    serving = asyncio.create_task(_send_stream(client.send, client.receive, answer, writer))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    writer.open = False  # back-pressure: the connection takes no more
    box.offer(b"stuck", b"stuck")  # the stream's task sends it itself, and waits there
    await asyncio.sleep(0.01)
    for _ in range(PENDING_LIMIT + 1):
        box.offer(b"more", b"more")
    assert writer.aborted and box.ended and box._pending is None
    await asyncio.wait_for(serving, 5)
    assert finished == ["closed"]
    assert asyncio.all_tasks() - before == set()
