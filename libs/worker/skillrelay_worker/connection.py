"""The connection a worker talks over, as the worker uses it: ``NatsLane`` (lean, the default) fits it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from skillrelay_worker.nats_lane import OnMessage


class Connection(Protocol):
    def publish(
        self, subject: str, payload: bytes, reply: str = "", headers: dict[str, str] | None = None
    ) -> None:
        """Queue a message (never waits); raises a ``nats.errors.Error`` when it cannot be sent."""

    def subscribe(self, subject: str, callback: OnMessage, queue: str = "") -> int:
        """Deliver every message on ``subject`` to ``callback`` (which must not block); returns an id."""

    def unsubscribe(self, sid: int) -> None: ...

    @property
    def max_payload(self) -> int:
        """The largest message the server takes: a bigger result is answered as an error instead."""

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until the server has everything sent (and every subscription) so far."""

    async def close(self) -> None:
        """Send what is queued, then close."""


# How a worker opens its connection: ``connect(url, name)``.
Connect = Callable[[str, str], Awaitable[Connection]]
