"""Listening streams at scale, functionally: many GET streams on one replica each receive a
list_changed, no JetStream consumer exists per listener, a resources/updated reaches only the
subscribers of its URI, and a GET stream resumes with Last-Event-ID on the other replica. (How many
and how fast is measured by ``make bench-scale``, never asserted here.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest
from prometheus_client import REGISTRY

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.registry import SkillsetChanged
from skillrelay_common.subjects import MCP_EVENTS
from skillrelay_devstack.edge import ControlPlane, EdgeHarness, demo_skillset, mcp_headers, two_replicas
from skillrelay_devstack.raw_mcp import initialize_request
from skillrelay_devstack.testing import create_database_now

INTEGRATION = "mcpserver_listen"
SKILLSET = "skillset_listen"
LISTENERS = 60
ACCEPT = "application/json, text/event-stream"
INIT = initialize_request()


@pytest.fixture(scope="module")
def edges(nats_url: str, postgres_admin_url: str) -> Iterator[list[EdgeHarness]]:
    control = ControlPlane()
    control.add(INTEGRATION, demo_skillset(SKILLSET))
    with two_replicas(nats_url, control, create_database_now(postgres_admin_url)) as replicas:
        yield replicas


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=LISTENERS + 20, max_keepalive_connections=LISTENERS + 20)
    async with httpx.AsyncClient(timeout=20, limits=limits) as http:
        yield http


async def _initialize(client: httpx.AsyncClient, url: str) -> str:
    response = await client.post(url, headers=mcp_headers(), json=INIT)
    assert response.status_code == 200, response.text
    return response.headers["mcp-session-id"]


async def _subscribe(client: httpx.AsyncClient, url: str, session: str, uri: str) -> None:
    body = {"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": {"uri": uri}}
    assert (await client.post(url, headers=mcp_headers(session), json=body)).json()["result"] == {}


class Listener:
    """One GET stream read in the background: its events as (id, message), and when it opened."""

    def __init__(self, client: httpx.AsyncClient, url: str, session: str, last_event_id: str | None = None):
        self.events: list[tuple[str | None, Any]] = []
        self.opened = asyncio.Event()
        self.changed = asyncio.Event()
        headers = mcp_headers(session, accept="text/event-stream")
        if last_event_id:
            headers["last-event-id"] = last_event_id
        self.task = asyncio.create_task(self._read(client, url, headers))

    async def _read(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        async with client.stream("GET", url, headers=headers) as stream:
            assert stream.status_code == 200
            event_id: str | None = None
            async for line in stream.aiter_lines():
                self.opened.set()
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: ") and line[6:].strip():
                    self.events.append((event_id, msgspec.json.decode(line[6:])))
                    event_id = None
                    self.changed.set()

    def methods(self) -> list[str]:
        return [message["method"] for _, message in self.events]

    async def wait_for(self, count: int, deadline: float = 20) -> None:
        async def enough() -> None:
            while len(self.events) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(enough(), deadline)

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def _change(bus: Bus, entity: str, *, uri: str | None = None, revision: int) -> None:
    event = SkillsetChanged(
        skillset_id=SKILLSET, owner_id="user_1", change="updated", entity=entity, uri=uri, revision=revision
    )
    await bus.nc.publish(f"events.registry.{entity}.updated", msgspec.json.encode(event))


async def _consumers(bus: Bus) -> int:
    info = await bus.js.stream_info(MCP_EVENTS.name)
    return int(info.state.consumer_count)


async def test_many_listeners_on_one_replica_all_get_list_changed_without_a_consumer_each(
    edges: list[EdgeHarness], client: httpx.AsyncClient, bus: Bus
) -> None:
    url = edges[0].mcp_url(INTEGRATION)
    # Sessions are opened a few at a time, as clients arrive: the sessions service answers creates
    # one after another, and 60 at once queue past the request timeout on a loaded machine.
    opening = asyncio.Semaphore(8)

    async def open_session() -> str:
        async with opening:
            return await _initialize(client, url)

    sessions = await asyncio.gather(*(open_session() for _ in range(LISTENERS)))
    listeners = [Listener(client, url, session) for session in sessions]
    try:
        await asyncio.wait_for(asyncio.gather(*(listener.opened.wait() for listener in listeners)), 20)
        assert await _consumers(bus) == 0  # listening is no JetStream consumer
        await _change(bus, "ability", revision=1)
        await asyncio.gather(*(listener.wait_for(1) for listener in listeners))
        for listener in listeners:
            assert listener.methods() == ["notifications/tools/list_changed"]
        # One stored notification for the integration, so every session shows the same event id.
        assert len({listener.events[0][0] for listener in listeners}) == 1
        # A burst of changes: every stream gets every notification, in order, with rising ids
        # (whether the fan-out wrote a frame straight to the connection or queued it).
        for revision, entity in enumerate(("prompt", "resource", "ability", "prompt"), start=2):
            await _change(bus, entity, revision=revision)
        await asyncio.gather(*(listener.wait_for(5) for listener in listeners))
        for listener in listeners:
            assert listener.methods() == [
                "notifications/tools/list_changed",
                "notifications/prompts/list_changed",
                "notifications/resources/list_changed",
                "notifications/tools/list_changed",
                "notifications/prompts/list_changed",
            ]
            seqs = [int(str(event_id).rsplit("-", 1)[1]) for event_id, _ in listener.events]
            assert seqs == sorted(seqs) and len(set(seqs)) == 5
        assert len({tuple(event_id for event_id, _ in listener.events) for listener in listeners}) == 1
    finally:
        await asyncio.gather(*(listener.close() for listener in listeners))


async def test_resources_updated_reaches_only_the_subscribers_of_its_uri(
    edges: list[EdgeHarness], client: httpx.AsyncClient, bus: Bus
) -> None:
    first, second = (edge.mcp_url(INTEGRATION) for edge in edges)
    watching, other, none, late = [await _initialize(client, first) for _ in range(4)]
    await _subscribe(client, first, watching, "test://watched")
    await _subscribe(client, second, other, "test://other")
    listeners = {session: Listener(client, first, session) for session in (watching, other, none, late)}
    try:
        await asyncio.gather(*(listener.opened.wait() for listener in listeners.values()))
        # Subscribed on the other replica while its GET stream is open on this one.
        await _subscribe(client, second, late, "test://watched")
        await _change(bus, "resource", uri="test://watched", revision=2)
        await listeners[watching].wait_for(2)
        await listeners[late].wait_for(2)
        # The non-subscribers get the list_changed sent to everyone, then the next change's too:
        # had an updated been meant for them it would have come in between.
        await _change(bus, "prompt", revision=3)
        for session in (other, none):
            await listeners[session].wait_for(2)
        for session in (watching, late):
            assert listeners[session].methods()[:2] == [
                "notifications/resources/list_changed",
                "notifications/resources/updated",
            ]
            assert listeners[session].events[1][1]["params"] == {"uri": "test://watched"}
        for session in (other, none):
            assert listeners[session].methods() == [
                "notifications/resources/list_changed",
                "notifications/prompts/list_changed",
            ]
    finally:
        await asyncio.gather(*(listener.close() for listener in listeners.values()))


async def test_a_get_stream_resumes_on_the_other_replica_with_last_event_id(
    edges: list[EdgeHarness], client: httpx.AsyncClient, bus: Bus
) -> None:
    first, second = (edge.mcp_url(INTEGRATION) for edge in edges)
    session = await _initialize(client, first)
    await _subscribe(client, first, session, "test://watched")
    bystander = await _initialize(client, first)
    keep_open = Listener(client, first, bystander)  # so the first replica stores what follows
    listener = Listener(client, first, session)
    try:
        await asyncio.gather(keep_open.opened.wait(), listener.opened.wait())
        await _change(bus, "ability", revision=10)
        await listener.wait_for(1)
        last_event_id = listener.events[0][0]
        assert last_event_id is not None
        await listener.close()
        # Missed while disconnected: a list_changed, and a resources/updated for this subscriber.
        await _change(bus, "resource", uri="test://watched", revision=11)
        await keep_open.wait_for(2)
        resumed = Listener(client, second, session, last_event_id)
        try:
            await resumed.wait_for(2)
            assert resumed.methods() == [
                "notifications/resources/list_changed",
                "notifications/resources/updated",
            ]
            assert last_event_id not in {event_id for event_id, _ in resumed.events}
            # After the replay the resumed stream is live on this replica.
            await _change(bus, "prompt", revision=12)
            await resumed.wait_for(3)
            assert resumed.methods()[2] == "notifications/prompts/list_changed"
        finally:
            await resumed.close()
        assert await _consumers(bus) == 0
    finally:
        await asyncio.gather(listener.close(), keep_open.close())


LISTEN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


async def test_many_listen_streams_each_get_every_notification_in_order_with_their_own_id(
    edges: list[EdgeHarness], client: httpx.AsyncClient, bus: Bus
) -> None:
    """2026-07-28 ``subscriptions/listen`` on one replica: each stream gets its acknowledgment, then
    every change's notification in order, each carrying that stream's own subscription id."""
    url = edges[0].mcp_url(INTEGRATION)
    headers = mcp_headers(**{"mcp-protocol-version": "2026-07-28", "mcp-method": "subscriptions/listen"})
    wanted = {"toolsListChanged": True, "promptsListChanged": True}
    received: dict[str, list[Any]] = {}
    opened = {f"listen-{n}": asyncio.Event() for n in range(20)}

    async def listen(subscription_id: str) -> None:
        body = {
            "jsonrpc": "2.0",
            "id": subscription_id,
            "method": "subscriptions/listen",
            "params": {"notifications": wanted, "_meta": LISTEN_META},
        }
        messages = received.setdefault(subscription_id, [])
        async with client.stream("POST", url, headers=headers, json=body) as stream:
            assert stream.status_code == 200
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    messages.append(msgspec.json.decode(line[6:]))
                    opened[subscription_id].set()

    listening = [asyncio.create_task(listen(subscription_id)) for subscription_id in opened]
    try:
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in opened.values())), 20)
        for revision, entity in enumerate(("ability", "prompt", "ability"), start=20):
            await _change(bus, entity, revision=revision)

        async def all_arrived() -> None:
            while any(len(messages) < 4 for messages in received.values()):  # noqa: ASYNC110
                await asyncio.sleep(0.05)

        await asyncio.wait_for(all_arrived(), 20)
        for subscription_id, messages in received.items():
            assert [message["method"] for message in messages] == [
                "notifications/subscriptions/acknowledged",
                "notifications/tools/list_changed",
                "notifications/prompts/list_changed",
                "notifications/tools/list_changed",
            ]
            for message in messages:
                assert message["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == subscription_id
    finally:
        for task in listening:
            task.cancel()
        await asyncio.gather(*listening, return_exceptions=True)


def _open_streams() -> float:
    return REGISTRY.get_sample_value("skillrelay_sse_streams") or 0.0


async def _until_open_streams(count: float) -> None:
    async def reached() -> None:
        while _open_streams() != count:  # noqa: ASYNC110 (a gauge the in-process replicas keep)
            await asyncio.sleep(0.05)

    await asyncio.wait_for(reached(), 20)


async def test_a_listening_client_that_goes_away_frees_its_stream_on_the_replica(
    edges: list[EdgeHarness], client: httpx.AsyncClient
) -> None:
    """The lean stream path: no task of its own to cancel, the client's disconnect ends the stream
    (``HttpAnswer.listening``), for a 2025 GET stream and a 2026 ``subscriptions/listen`` alike."""
    url = edges[0].mcp_url(INTEGRATION)
    before = _open_streams()
    get_stream = Listener(client, url, await _initialize(client, url))
    params = {"notifications": {"toolsListChanged": True}, "_meta": LISTEN_META}
    body = {"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen", "params": params}
    headers = mcp_headers(**{"mcp-protocol-version": "2026-07-28", "mcp-method": "subscriptions/listen"})
    listen_opened = asyncio.Event()

    async def listen() -> None:
        async with client.stream("POST", url, headers=headers, json=body) as stream:
            assert stream.status_code == 200
            async for _ in stream.aiter_lines():
                listen_opened.set()

    listening = asyncio.create_task(listen())
    try:
        await asyncio.wait_for(asyncio.gather(get_stream.opened.wait(), listen_opened.wait()), 20)
        await _until_open_streams(before + 2)
    finally:
        listening.cancel()
        await asyncio.gather(listening, get_stream.close(), return_exceptions=True)
    await _until_open_streams(before)
