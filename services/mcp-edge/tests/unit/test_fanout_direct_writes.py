"""A fan-out writes each notification straight to every idle listener's connection, encoded once:
every GET stream gets the same frame (with the integration broadcast's event id) and every
``subscriptions/listen`` stream its own subscription id spliced in, byte for byte what the stream's
task would have sent, in order; a stream that is busy gets it queued, after what it had."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from skillrelay_edge.calls.sse import KEEPALIVE, StoredEvent
from skillrelay_edge.integrations.snapshots import Change
from skillrelay_edge.modern.listen import Listener, ListenFilter, ListenStreams, _frame
from skillrelay_edge.sessions.notifications import OpenStream, SessionStreams


class Connection:
    """A listening stream's connection: what the stream's task sent, then what a fan-out wrote."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write_now(self, data: bytes) -> bool:
        self.frames.append(data)
        return True

    def abort(self) -> None:
        raise AssertionError("not dropped in these tests")


class FakeStore:
    def __init__(self) -> None:
        self.stored = 0

    async def broadcast(
        self, integration_id: str, data: bytes, *, dedup_key: str, uri: str | None = None
    ) -> int:
        self.stored += 1
        return self.stored


async def _serve(frames: AsyncIterator[bytes], connection: Connection) -> None:
    async for item in frames:
        connection.frames.append(item)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _messages(frames: list[bytes]) -> list[tuple[str | None, Any]]:
    found = []
    for item in frames:
        if item == KEEPALIVE:
            continue
        lines = item.decode().splitlines()
        event_id = next((line[4:] for line in lines if line.startswith("id: ")), None)
        data = next(line[6:] for line in lines if line.startswith("data: "))
        found.append((event_id, msgspec.json.decode(data)))
    return found


async def test_every_get_stream_gets_each_notification_in_order_written_directly() -> None:
    streams = SessionStreams(None, FakeStore())  # type: ignore[arg-type]
    opened = [OpenStream(f"sess-{n}", "mcpserver_1", "skillset_demo", "static:v1") for n in range(40)]
    connections = [Connection() for _ in opened]
    serving = []
    for stream, connection in zip(opened, connections, strict=True):
        serving.append(asyncio.create_task(_serve(await streams.follow(stream, None), connection)))
    await _settle()
    for stream, connection in zip(opened, connections, strict=True):
        stream.attach(connection)
    busy = opened[0]
    busy.attach(None)  # as while its task sends something: it gets the frames queued instead
    for entity in ("ability", "prompt", "resource"):
        await streams._notify(Change(entity, "updated", skillset_id="skillset_demo"))
    await _settle()
    expected = [
        ("get-1", "notifications/tools/list_changed"),
        ("get-2", "notifications/prompts/list_changed"),
        ("get-3", "notifications/resources/list_changed"),
    ]
    for connection in connections:
        got = _messages(connection.frames)
        assert [(event_id, message["method"]) for event_id, message in got] == expected
    # The same bytes as the stream's task sends for a queued event.
    assert connections[1].frames[1:] == connections[0].frames[1:]
    assert not any(task.done() for task in serving)  # every stream still open, its task asleep
    streams.end_all()
    await asyncio.gather(*serving)


async def test_a_resumed_stream_is_not_written_what_it_replayed() -> None:
    stream = OpenStream("sess", "mcpserver_1", "skillset_demo", "static:v1")
    connection = Connection()
    stream.attach(connection)
    stream.floor = 5
    waiting = asyncio.create_task(stream.next(3600))
    await asyncio.sleep(0)
    stream.offer(StoredEvent("get-5", b"{}", False, 5), b"replayed")
    stream.offer(StoredEvent("get-6", b"{}", False, 6), b"new")
    assert connection.frames == [b"new"]
    stream.end()
    assert await waiting is None


async def test_listen_streams_each_get_their_subscription_id_spliced_into_one_encoding() -> None:
    listens = ListenStreams()
    wanted = ListenFilter(frozenset({"toolsListChanged"}), frozenset({"note://1"}))
    ids: list[Any] = [1, 2**40, "listen-1", 'quo"te\\', "üñí\u2028"]
    listeners = [Listener("mcpserver_1", "skillset_demo", subscription_id, wanted) for subscription_id in ids]
    connections = [Connection() for _ in listeners]
    serving = [
        asyncio.create_task(_serve(listens.follow(listener), connection))
        for listener, connection in zip(listeners, connections, strict=True)
    ]
    await _settle()
    for listener, connection in zip(listeners, connections, strict=True):
        listener.attach(connection)
    listens.on_change(Change("ability", "updated", skillset_id="skillset_demo"))
    listens.on_change(Change("resource", "updated", skillset_id="skillset_demo", uri="note://1"))
    listens.on_change(Change("ability", "deleted", skillset_id="skillset_other"))
    for subscription_id, connection in zip(ids, connections, strict=True):
        acknowledged, tools, updated = connection.frames
        assert acknowledged.startswith(b"event: message\ndata: ")
        assert tools == _frame("notifications/tools/list_changed", {}, subscription_id)
        assert updated == _frame("notifications/resources/updated", {"uri": "note://1"}, subscription_id)
        for item in (tools, updated):
            message = msgspec.json.decode(item.split(b"data: ", 1)[1])
            assert message["params"]["_meta"] == {"io.modelcontextprotocol/subscriptionId": subscription_id}
    listens.end_all()
    await asyncio.gather(*serving)
