"""What a listening stream waits on: a slotted mailbox, a few hundred bytes while its client is idle.

Tens of thousands of clients keep a listening stream open on one edge replica (a 2025-era GET stream,
a 2026-era ``subscriptions/listen``), so what each costs while idle is what one replica can hold. An
``asyncio.Queue`` holds three deques (about 2 KB, empty); this holds nothing while idle but, while its
stream waits, one future and one timer handle (the keep-alive). See docs/scale.md.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Mailbox(Generic[T]):
    """Items for one consumer, in order; ``end`` ends it. One consumer at a time calls ``next``."""

    __slots__ = ("_ended", "_pending", "_waiter")

    def __init__(self) -> None:
        # A list, created on the first item and dropped once drained: idle streams keep nothing.
        self._pending: list[T] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False

    @property
    def ended(self) -> bool:
        return self._ended

    def push(self, item: T) -> None:
        if self._ended:
            return
        if self._pending is None:
            self._pending = [item]
        else:
            self._pending.append(item)
        if self._waiter is not None:
            _wake(self._waiter)

    def end(self) -> None:
        self._ended = True
        if self._waiter is not None:
            _wake(self._waiter)

    async def next(self, timeout: float) -> T | None:
        """The next item; None after ``timeout`` seconds without one (a keep-alive is due) or once
        ended with nothing left (see ``ended``). Items pushed before ``end`` are still returned."""
        if not self._pending and not self._ended:
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiter = waiter
            timer = loop.call_later(timeout, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        pending = self._pending
        if not pending:
            return None
        item = pending.pop(0)
        if not pending:
            self._pending = None
        return item
