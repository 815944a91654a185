"""An in-process ``ClientResponseRelay`` for unit tests: answers are matched only in this process
(the edge itself uses ``relay.NatsClientResponseRelay``)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable
from typing import Any

from skillrelay_edge.calls.context import RequestId


class LocalClientResponseRelay:
    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._waiters: dict[tuple[str, RequestId], asyncio.Future[dict[str, Any]]] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for waiter in self._waiters.values():
            waiter.cancel()
        self._waiters.clear()

    def new_request_id(self) -> RequestId:
        return f"srv-local-{next(self._counter)}"

    def expect(self, session_id: str, request_id: RequestId) -> Awaitable[dict[str, Any]]:
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[(session_id, request_id)] = waiter
        return waiter

    def forget(self, session_id: str, request_id: RequestId) -> None:
        waiter = self._waiters.pop((session_id, request_id), None)
        if waiter is not None:
            waiter.cancel()

    async def deliver_client_response(self, session_id: str, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        if isinstance(request_id, str | int):
            waiter = self._waiters.pop((session_id, request_id), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
