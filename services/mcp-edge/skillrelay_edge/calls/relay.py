"""Answers to server-to-client requests, whichever edge replica the client POSTs them to.

The replica holding a call writes the request (sampling, elicitation, roots) on that call's SSE stream
with an id from ``new_request_id()``: ``srv-<edgeKey>-<n>``. The client may POST its JSON-RPC response
to any replica (no sticky sessions). That replica calls ``deliver_client_response``: a local waiter is
resolved at once; otherwise the response goes over NATS to ``edge.relay.<edgeKey>`` (the key is read
back from the id), or, for ids of another shape, to every replica (``edge.relay.any``). Waiters are
keyed by session and id, so one session cannot answer another's request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import uuid
from collections.abc import Awaitable
from typing import Any

import msgspec
import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from skillrelay_common.messaging import Bus, encode
from skillrelay_common.schemas.edge import ClientResponseRelayed
from skillrelay_common.subjects import relay_subject
from skillrelay_edge.calls.context import RequestId

_log = structlog.get_logger("skillrelay.edge.relay")
_decoder = msgspec.json.Decoder(ClientResponseRelayed)
_ROUTED_ID = re.compile(r"^srv-([0-9a-f]{12})-\d+$")
BROADCAST_KEY = "any"


def _waiter_key(session_id: str, request_id: RequestId) -> tuple[str, str]:
    # JSON-RPC ids 1 and "1" are different requests.
    return session_id, (f"s:{request_id}" if isinstance(request_id, str) else f"i:{request_id}")


class NatsClientResponseRelay:
    """``ClientResponseRelay`` across edge replicas over core NATS."""

    def __init__(self, bus: Bus, *, edge_key: str | None = None) -> None:
        self._bus = bus
        self.edge_key = edge_key or uuid.uuid4().hex[:12]
        self._counter = itertools.count(1)
        self._waiters: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}
        self._subscriptions: list[Subscription] = []

    async def start(self) -> None:
        nc = self._bus.nc
        self._subscriptions = [
            await nc.subscribe(relay_subject(self.edge_key), cb=self._on_relayed),
            await nc.subscribe(relay_subject(BROADCAST_KEY), cb=self._on_relayed),
        ]
        await nc.flush()

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._subscriptions = []
        for waiter in self._waiters.values():
            waiter.cancel()
        self._waiters.clear()

    def new_request_id(self) -> str:
        """An id for a server-to-client request that routes its answer back to this replica."""
        return f"srv-{self.edge_key}-{next(self._counter)}"

    def expect(self, session_id: str, request_id: RequestId) -> Awaitable[dict[str, Any]]:
        key = _waiter_key(session_id, request_id)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[key] = waiter
        return waiter

    def forget(self, session_id: str, request_id: RequestId) -> None:
        waiter = self._waiters.pop(_waiter_key(session_id, request_id), None)
        if waiter is not None and not waiter.done():
            waiter.cancel()

    @property
    def pending(self) -> int:
        return len(self._waiters)

    async def deliver_client_response(self, session_id: str, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            return
        if self._resolve(session_id, request_id, message):
            return
        routed = _ROUTED_ID.match(request_id) if isinstance(request_id, str) else None
        if routed and routed.group(1) == self.edge_key:
            return  # ours, but nobody waits any more (timed out or cancelled)
        relayed = ClientResponseRelayed(
            session_id=session_id,
            request_id=_waiter_key(session_id, request_id)[1],
            result=message.get("result") if isinstance(message.get("result"), dict) else None,
            error=message.get("error") if isinstance(message.get("error"), dict) else None,
        )
        target = relay_subject(routed.group(1) if routed else BROADCAST_KEY)
        with contextlib.suppress(nats.errors.Error):
            await self._bus.nc.publish(target, encode(relayed))

    def _resolve(self, session_id: str, request_id: RequestId, message: dict[str, Any]) -> bool:
        waiter = self._waiters.pop(_waiter_key(session_id, request_id), None)
        if waiter is None:
            return False
        if not waiter.done():
            waiter.set_result(message)
        return True

    async def _on_relayed(self, msg: Msg) -> None:
        try:
            relayed = _decoder.decode(msg.data)
        except msgspec.DecodeError:
            return
        waiter = self._waiters.pop((relayed.session_id, relayed.request_id), None)
        if waiter is None or waiter.done():
            return
        raw_id = relayed.request_id[2:]
        request_id: RequestId = raw_id if relayed.request_id.startswith("s:") else int(raw_id)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        if relayed.error is not None:
            message["error"] = relayed.error
        else:
            message["result"] = relayed.result or {}
        waiter.set_result(message)
