"""Running a process until it is told to stop: a worker, and the services (which import this too)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

PARENT_PID_VARIABLE = "SKILLRELAY_PARENT_PID"


def stop_with_parent(interval: float = 1.0) -> None:
    """When a launcher (``skillrelay run``, a test's stack) set ``SKILLRELAY_PARENT_PID``: stop this
    process gracefully (SIGTERM to itself) once that parent is gone, e.g. killed before it could stop
    its children. Polls ``getppid`` from a daemon thread, so it works under any event loop."""
    expected = os.environ.get(PARENT_PID_VARIABLE, "")
    if not expected.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(expected):
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()


def freeze_startup_heap() -> None:
    """Take what is alive once a service has started (modules, classes, the app, its caches: ~140k
    objects in the edge) out of the cyclic GC's sight. They live as long as the process, yet every full
    collection walked them all again: ~100 ms of stalled requests each on a busy edge. What is made
    later is collected as before. Called by the process entry points, never by an app a test builds."""
    gc.collect()
    gc.freeze()


def run_until_signalled(
    start: Callable[[], Awaitable[Any]], stop: Callable[[], Awaitable[None]], *, uvloop: bool = False
) -> None:
    """For NATS-only processes (a worker, a NATS-only service): ``start``, wait for SIGINT/SIGTERM, then
    ``stop`` (drain). With ``uvloop``, on uvloop where it is installed."""

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await start()
        freeze_startup_heap()
        try:
            await stopping.wait()
        finally:
            await stop()

    run_loop: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run
    if uvloop:
        with contextlib.suppress(ImportError):
            from uvloop import run as run_loop
    stop_with_parent()
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(main())
