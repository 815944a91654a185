"""The snapshot cache (hits, invalidation by registry events, fail-closed on NATS loss) and which
notifications a change sends to open GET streams, with fake NATS pieces."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import msgspec

from skillrelay_common.schemas.base import NotFound, Unavailable
from skillrelay_common.schemas.registry import (
    IntegrationChanged,
    IntegrationInfo,
    IntegrationSnapshot,
    SkillsetChanged,
)
from skillrelay_devstack.edge import demo_skillset
from skillrelay_edge.calls.sse import KEEPALIVE
from skillrelay_edge.integrations.catalog import Catalog
from skillrelay_edge.integrations.snapshots import Change, SnapshotCache
from skillrelay_edge.sessions.notifications import OpenStream, SessionStreams


@dataclass
class FakeNc:
    is_connected: bool = True
    stats: dict[str, int] = field(default_factory=lambda: {"reconnects": 0})


class FakeBus:
    def __init__(self) -> None:
        self.nc = FakeNc()
        self.asked = 0
        self.release = asyncio.Event()
        self.release.set()
        self.asking = asyncio.Event()

    async def request(self, endpoint: Any, message: Any, **_: Any) -> Any:
        self.asked += 1
        self.asking.set()
        await self.release.wait()
        if message.integration_id == "mcpserver_gone":
            return NotFound()
        if not self.nc.is_connected:
            return Unavailable()
        skillset = demo_skillset()
        info = IntegrationInfo(id=message.integration_id, owner_id="u", name="n", skillset_id=skillset.id)
        return IntegrationSnapshot(integration=info, skillset=skillset)


@dataclass
class Msg:
    subject: str
    data: bytes
    headers: dict[str, str] | None = None


def _cache() -> tuple[SnapshotCache, FakeBus]:
    bus = FakeBus()
    return SnapshotCache(bus), bus  # type: ignore[arg-type]


async def test_hits_and_concurrent_misses_ask_once() -> None:
    cache, bus = _cache()
    bus.release.clear()
    first = asyncio.ensure_future(cache.get("mcpserver_1"))
    await asyncio.wait_for(bus.asking.wait(), 5)
    second = asyncio.ensure_future(cache.get("mcpserver_1"))  # joins the request in flight
    bus.release.set()
    one, two = await asyncio.gather(first, second)
    assert isinstance(one, Catalog) and one is two
    assert await cache.get("mcpserver_1") is one
    assert isinstance(await cache.get("mcpserver_gone"), NotFound)
    assert bus.asked == 2


async def test_registry_events_invalidate_and_notify() -> None:
    cache, bus = _cache()
    changes: list[Change] = []
    cache.add_listener(changes.append)
    await cache.get("mcpserver_1")
    ability = SkillsetChanged(skillset_id="skillset_demo", owner_id="u", change="updated", entity="ability")
    await cache._on_event(Msg("events.registry.ability.updated", msgspec.json.encode(ability)))  # type: ignore[arg-type]
    await cache.get("mcpserver_1")
    assert bus.asked == 2
    updated = IntegrationChanged(
        integration_id="mcpserver_1", owner_id="u", change="updated", fields=["name"]
    )
    await cache._on_event(Msg("events.registry.integration.updated", msgspec.json.encode(updated)))  # type: ignore[arg-type]
    await cache.get("mcpserver_1")
    assert bus.asked == 3
    await cache._on_event(Msg("events.registry.user.created", b"{}"))  # type: ignore[arg-type]
    assert [(c.entity, c.change) for c in changes] == [("ability", "updated"), ("integration", "updated")]


async def test_fails_closed_without_nats_and_forgets_across_reconnects() -> None:
    cache, bus = _cache()
    await cache.get("mcpserver_1")
    bus.nc.is_connected = False
    assert isinstance(await cache.get("mcpserver_1"), Unavailable)
    bus.nc.is_connected = True
    bus.nc.stats["reconnects"] = 1
    await cache.get("mcpserver_1")
    assert bus.asked == 2


class FakeStore:
    def __init__(self) -> None:
        self.stored: list[tuple[str, bytes, str]] = []

    async def broadcast(
        self, integration_id: str, data: bytes, *, dedup_key: str, uri: str | None = None
    ) -> int:
        self.stored.append((integration_id, data, dedup_key))
        return len(self.stored)


async def _notified(change: Change, subscriptions: list[str]) -> list[Any]:
    """What one listening stream of the change's integration is sent (and whether it ended)."""
    store = FakeStore()
    streams = SessionStreams(None, store)  # type: ignore[arg-type]
    stream = OpenStream("sess", "mcpserver_1", "skillset_demo", "static:v1", subscriptions)
    streams.fanout.add(stream)
    await streams._notify(change)
    sent = []
    while (event := await stream.next(0)) is not None:
        sent.append(msgspec.json.decode(event.data))
    # Each notification is stored once, for the integration (a resources/updated even with no
    # subscriber listening here: one may resume on another replica).
    assert len(store.stored) >= len(sent)
    return sent + (["ended"] if stream.ended else [])


async def test_changes_map_to_notifications() -> None:
    resource = Change("resource", "updated", skillset_id="skillset_demo", uri="note://1")
    sent = await _notified(resource, ["note://1"])
    assert [m["method"] for m in sent] == [
        "notifications/resources/list_changed",
        "notifications/resources/updated",
    ]
    assert sent[1]["params"] == {"uri": "note://1"}
    unsubscribed = await _notified(resource, [])
    assert [m["method"] for m in unsubscribed] == ["notifications/resources/list_changed"]
    prompt = await _notified(Change("prompt", "created", skillset_id="skillset_demo"), [])
    assert [m["method"] for m in prompt] == ["notifications/prompts/list_changed"]
    other = await _notified(Change("ability", "created", skillset_id="skillset_other"), [])
    assert other == []
    moved = Change(
        "integration",
        "updated",
        integration_id="mcpserver_1",
        skillset_id="skillset_b",
        fields=("skillsetId",),
    )
    assert len(await _notified(moved, [])) == 3
    assert await _notified(Change("integration", "deleted", integration_id="mcpserver_1"), []) == ["ended"]


class FailingStore:
    async def broadcast(
        self, integration_id: str, data: bytes, *, dedup_key: str, uri: str | None = None
    ) -> int:
        raise TimeoutError


async def test_a_notification_the_store_refuses_still_reaches_the_streams_open_here() -> None:
    streams = SessionStreams(None, FailingStore())  # type: ignore[arg-type]
    stream = OpenStream("sess", "mcpserver_1", "skillset_demo", "static:v1")
    frames = await streams.follow(stream, None)
    assert await anext(frames) == KEEPALIVE
    await streams._notify(Change("ability", "updated", skillset_id="skillset_demo"))
    sent = await anext(frames)
    assert not sent.startswith(b"id:")  # not stored: nothing a resuming client could name
    assert b"notifications/tools/list_changed" in sent
    await frames.aclose()
