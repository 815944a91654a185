"""Cache of integration snapshots (integration + skillset), filled by ``REGISTRY_INTEGRATION_RESOLVE``
and emptied by registry events. A replica that lost NATS may have missed events, so entries from
before the last reconnect are never served, and nothing is served while disconnected."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from nats.aio.msg import Msg

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.base import NotFound, Unavailable
from skillrelay_common.schemas.registry import (
    IntegrationChanged,
    IntegrationSnapshot,
    ResolveIntegration,
    SkillsetChanged,
)
from skillrelay_common.subjects import REGISTRY_EVENTS, REGISTRY_INTEGRATION_RESOLVE
from skillrelay_edge.integrations.catalog import Catalog
from skillrelay_worker.correlation import CORRELATION_HEADER

_log = structlog.get_logger("skillrelay.edge.snapshots")
_integration_changed = msgspec.json.Decoder(IntegrationChanged)
_skillset_changed = msgspec.json.Decoder(SkillsetChanged)
SKILLSET_ENTITIES = frozenset({"skillset", "ability", "resource", "prompt", "source"})


def _event_key(msg: Msg) -> str:
    """The same for every replica receiving one registry event, different for another event."""
    digest = hashlib.sha256(msg.subject.encode())
    digest.update(((msg.headers or {}).get(CORRELATION_HEADER) or "").encode())
    digest.update(msg.data)
    return digest.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Change:
    """What changed, for the notifications sent to open sessions."""

    entity: str  # integration | skillset | ability | resource | prompt
    change: str  # created | updated | deleted
    integration_id: str | None = None
    skillset_id: str | None = None
    uri: str | None = None
    fields: tuple[str, ...] = ()
    # Identifies the registry event: every replica derives the same key, so the notification they
    # each store for it is kept once (JetStream de-duplication).
    key: str = ""


ChangeListener = Callable[[Change], None]


class SnapshotCache:
    def __init__(self, bus: Bus, *, nats_connected: Callable[[], bool] | None = None) -> None:
        self._bus = bus
        self._entries: dict[str, tuple[Catalog | NotFound, int]] = {}
        self._inflight: dict[str, asyncio.Future[Catalog | NotFound | Unavailable]] = {}
        self._generation = 0
        self._listeners: list[ChangeListener] = []
        self._subscription: Any = None
        self._connected = nats_connected or (lambda: bus.nc.is_connected)

    def add_listener(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def _epoch(self) -> int:
        return int(self._bus.nc.stats.get("reconnects", 0))

    async def start(self) -> None:
        self._subscription = await self._bus.nc.subscribe(REGISTRY_EVENTS.subjects[0], cb=self._on_event)

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()

    async def get(self, integration_id: str) -> Catalog | NotFound | Unavailable:
        if not self._connected():
            # Fail closed: events may be missed right now.
            self._entries.clear()
            return Unavailable(message="NATS connection is down")
        entry = self._entries.get(integration_id)
        if entry is not None and entry[1] == self._epoch():
            return entry[0]
        pending = self._inflight.get(integration_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Catalog | NotFound | Unavailable] = asyncio.get_running_loop().create_future()
        self._inflight[integration_id] = future
        try:
            generation, epoch = self._generation, self._epoch()
            reply = await self._bus.request(
                REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id=integration_id)
            )
            answer: Catalog | NotFound | Unavailable = (
                Catalog.build(reply) if isinstance(reply, IntegrationSnapshot) else reply
            )
            if not isinstance(answer, Unavailable) and generation == self._generation:
                self._entries[integration_id] = (answer, epoch)
            future.set_result(answer)
            return answer
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved
            raise
        finally:
            del self._inflight[integration_id]

    def invalidate(self, integration_id: str | None = None, skillset_id: str | None = None) -> None:
        self._generation += 1
        if integration_id is None and skillset_id is None:
            self._entries.clear()
            return
        for key, (snapshot, _) in list(self._entries.items()):
            if key == integration_id or (
                isinstance(snapshot, Catalog) and snapshot.snapshot.skillset.id == skillset_id
            ):
                del self._entries[key]

    def cached_integrations(self, skillset_id: str) -> list[str]:
        return [
            key
            for key, (snapshot, _) in self._entries.items()
            if isinstance(snapshot, Catalog) and snapshot.snapshot.skillset.id == skillset_id
        ]

    async def _on_event(self, msg: Msg) -> None:
        parts = msg.subject.split(".")
        if len(parts) != 4:
            return
        entity = parts[2]
        try:
            if entity == "integration":
                event = _integration_changed.decode(msg.data)
                self.invalidate(integration_id=event.integration_id)
                change = Change(
                    "integration",
                    event.change,
                    integration_id=event.integration_id,
                    skillset_id=event.skillset_id,
                    fields=tuple(event.fields),
                )
            elif entity in SKILLSET_ENTITIES:
                skillset_event = _skillset_changed.decode(msg.data)
                self.invalidate(skillset_id=skillset_event.skillset_id)
                change = Change(
                    entity,
                    skillset_event.change,
                    skillset_id=skillset_event.skillset_id,
                    uri=skillset_event.uri,
                )
            else:
                return
        except msgspec.DecodeError:
            _log.warning("snapshots.event.unreadable", subject=msg.subject)
            return
        change = dataclasses.replace(change, key=_event_key(msg))
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:
                _log.exception("snapshots.listener.failed")
