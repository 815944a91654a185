"""What a listening stream waits on: a slotted mailbox, a few hundred bytes while its client is idle.

Tens of thousands of clients keep a listening stream open on one edge replica (a 2025-era GET stream,
a 2026-era ``subscriptions/listen``), so what each costs while idle is what one replica can hold. An
``asyncio.Queue`` holds three deques (about 2 KB, empty); this holds nothing while idle but, while its
stream waits, one future and one timer handle (the keep-alive).

A fan-out to all of them is paid per listener, on the replica's one event loop: waking each stream's
task to write one frame costs tens of microseconds. So while a stream's task waits with nothing
queued, ``offer`` writes the frame straight to its connection (``DirectWriter``, attached by the HTTP
layer once the response has started) and its task sleeps on; anything else (the task busy, the
connection not taking bytes now, no writer) queues the item as before, so a stream's frames keep their
order. A queue is bounded (``PENDING_LIMIT``): a client that stops reading is cut off, not buffered
without end. See docs/scale.md.
"""

from __future__ import annotations

import asyncio
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")

# Items queued for one stream at most. Only a client that does not read its stream (the connection
# stops taking bytes, so its task waits on it) gets near it; past it the stream ends and its
# connection is dropped: the client reconnects (a GET stream resumes with Last-Event-ID).
PENDING_LIMIT = 1000


class DirectWriter(Protocol):
    """A streaming response's connection, written from outside its request's task."""

    def write_now(self, data: bytes) -> bool:
        """Send ``data`` as the response's next body bytes if the connection takes them at once
        (open, not paused by back-pressure); False, having sent nothing, otherwise."""

    def abort(self) -> None:
        """Drop the connection at once, discarding what it has not sent."""


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Mailbox(Generic[T]):
    """Items for one consumer, in order; ``end`` ends it. One consumer at a time calls ``next``."""

    __slots__ = ("_ended", "_pending", "_waiter", "_writer")

    def __init__(self) -> None:
        # A list, created on the first item and dropped once drained: idle streams keep nothing.
        self._pending: list[T] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._writer: DirectWriter | None = None
        self._ended = False

    @property
    def ended(self) -> bool:
        return self._ended

    def attach(self, writer: DirectWriter | None) -> None:
        """The connection ``offer`` may write to while the consumer waits (None: none from now on).
        The HTTP layer attaches it once the response has started and detaches it before ending it."""
        self._writer = writer

    def push(self, item: T) -> None:
        if self._ended:
            return
        pending = self._pending
        if pending is None:
            self._pending = [item]
        elif len(pending) < PENDING_LIMIT:
            pending.append(item)
        else:
            self._overflow()
            return
        if self._waiter is not None:
            _wake(self._waiter)

    def offer(self, item: T, wire: bytes) -> None:
        """``push(item)``, or, while the consumer waits with nothing queued, write ``wire`` (the bytes
        the consumer would send for ``item``) straight to the connection, leaving the consumer asleep.
        A fan-out calls this: no task wakes per listener that takes the frame at once."""
        waiter, writer = self._waiter, self._writer
        if (
            writer is not None
            and waiter is not None
            and self._pending is None
            and not waiter.done()
            and writer.write_now(wire)
        ):
            return
        self.push(item)

    def end(self) -> None:
        self._ended = True
        if self._waiter is not None:
            _wake(self._waiter)

    def _overflow(self) -> None:
        """The consumer fell ``PENDING_LIMIT`` items behind: drop them and end the stream; drop the
        connection too (its task may be waiting for a client that does not read)."""
        self._pending = None
        writer, self._writer = self._writer, None
        self.end()
        if writer is not None:
            writer.abort()

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
