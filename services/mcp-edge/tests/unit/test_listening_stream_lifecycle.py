"""The listening streams' lean path: the slotted mailbox a stream waits on, and the HTTP side that
sends a stream's frames from the request's own task and ends it through ``stop`` when the client
goes (no task cancelled, one watcher task, nothing left behind)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from skillrelay_edge.transport.endpoint import HttpAnswer
from skillrelay_edge.transport.mailbox import Mailbox
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
