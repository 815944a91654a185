"""Is another edge replica alive? Each replica answers ``edge.replica.<itsKey>.alive``; "no responders"
(asked twice, as nats-server may briefly report it for a live subscription) or no answer means gone."""

from __future__ import annotations

import asyncio
import contextlib

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import edge_liveness_subject


class ReplicaLiveness:
    def __init__(self, bus: Bus, edge_key: str, *, timeout: float = 1.0) -> None:
        self._bus = bus
        self.edge_key = edge_key
        self.timeout = timeout
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        self._subscription = await self._bus.nc.subscribe(
            edge_liveness_subject(self.edge_key), cb=self._answer
        )
        await self._bus.nc.flush()

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def _answer(self, msg: Msg) -> None:
        if msg.reply:
            with contextlib.suppress(nats.errors.Error):
                await self._bus.nc.publish(msg.reply, b"")

    async def is_alive(self, edge_key: str) -> bool:
        """False only when the replica is gone; True when alive or when NATS cannot tell us now."""
        if edge_key == self.edge_key:
            return True
        subject = edge_liveness_subject(edge_key)
        for attempt in range(2):
            try:
                await self._bus.nc.request(subject, b"", timeout=self.timeout)
                return True
            except nats.errors.NoRespondersError:
                if attempt == 0:
                    await asyncio.sleep(0.05)
            except nats.errors.TimeoutError:
                return False
            except nats.errors.Error:
                return True  # our own connection is down: do not adopt on a guess
        return False
