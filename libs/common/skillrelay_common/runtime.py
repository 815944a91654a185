"""Running a service process: uvicorn for HTTP services, a signal-aware loop for NATS-only ones."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import uvicorn

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


class _Server(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # the app's lifespan start-up has run, the sockets listen
        if not self.should_exit:
            freeze_startup_heap()


def serve_http(
    app: Any, host: str, port: int, *, log_level: str = "warning", forwarded_allow_ips: str = ""
) -> None:
    """Serve an ASGI app until SIGINT/SIGTERM; uvicorn finishes in-flight requests, then runs the
    app's shutdown (where the service drains NATS). Behind a reverse proxy, ``forwarded_allow_ips``
    names it, so the client address (rate limits, logs) is the caller's, not the proxy's."""
    config = uvicorn_config(app, host, port, log_level=log_level, forwarded_allow_ips=forwarded_allow_ips)
    stop_with_parent()
    _Server(config).run()


def uvicorn_config(
    app: Any, host: str, port: int, *, log_level: str = "warning", forwarded_allow_ips: str = ""
) -> uvicorn.Config:
    """With no trusted proxy, X-Forwarded-* headers are not read at all (uvicorn would otherwise
    fall back to trusting 127.0.0.1, i.e. any local client)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        server_header=False,
        proxy_headers=bool(forwarded_allow_ips.strip()),
        forwarded_allow_ips=forwarded_allow_ips.strip() or None,
        loop="auto",
        http="auto",
    )


def run_until_signalled(
    start: Callable[[], Awaitable[Any]], stop: Callable[[], Awaitable[None]], *, uvloop: bool = False
) -> None:
    """For NATS-only processes: ``start``, wait for SIGINT/SIGTERM, then ``stop`` (drain). With
    ``uvloop``, on uvloop where it is installed (it comes with ``uvicorn[standard]``)."""

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
