"""Ending long-lived SSE streams as soon as the server is asked to stop.

uvicorn tells the application nothing until every connection has closed, and a GET stream never
closes by itself: shutdown would wait the whole grace period and then cut streams off mid-event.
Hooking ``uvicorn.Server.handle_exit`` (what its signal handlers call) lets the edge end its streams
cleanly at once; clients then resume on another replica with ``Last-Event-ID``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

_callbacks: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = []
_installed = False


def install_exit_hook() -> None:
    """Patch ``uvicorn.Server.handle_exit`` once. Must run before the server starts: uvicorn binds its
    signal handlers to ``self.handle_exit`` when it starts serving."""
    global _installed
    if not _installed:
        original: Any = uvicorn.Server.handle_exit

        def handle_exit(self: uvicorn.Server, sig: int, frame: FrameType | None) -> None:
            for target_loop, registered in list(_callbacks):
                if not target_loop.is_closed():
                    target_loop.call_soon_threadsafe(registered)
            original(self, sig, frame)

        uvicorn.Server.handle_exit = handle_exit  # type: ignore[method-assign]
        _installed = True


def on_server_exit(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` on ``loop`` when uvicorn starts shutting down; returns a remover."""
    install_exit_hook()
    entry = (loop, callback)
    _callbacks.append(entry)

    def remove() -> None:
        if entry in _callbacks:
            _callbacks.remove(entry)

    return remove
