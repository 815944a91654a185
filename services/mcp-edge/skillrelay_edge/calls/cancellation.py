"""notifications/cancelled: the call may run on another replica than the one receiving the notice,
so a notice for an unknown local call is broadcast to every replica."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
import nats.errors
from nats.aio.msg import Msg

from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import EDGE_CANCEL_SUBJECT
from skillrelay_edge.calls.context import CallContext, RequestId


class CancelCall(msgspec.Struct, kw_only=True):
    session_id: str
    request_id: str | int


_decoder = msgspec.json.Decoder(CancelCall)
_encoder = msgspec.json.Encoder()


def _key(session_id: str, request_id: RequestId) -> tuple[str, str]:
    return session_id, (f"s:{request_id}" if isinstance(request_id, str) else f"i:{request_id}")


class InFlightCalls:
    def __init__(self, bus: Bus | None) -> None:
        self._bus = bus
        self._calls: dict[tuple[str, str], CallContext] = {}
        self._subscription: Any = None

    async def start(self) -> None:
        if self._bus is not None:
            self._subscription = await self._bus.nc.subscribe(EDGE_CANCEL_SUBJECT, cb=self._on_cancel)

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()

    def add(self, ctx: CallContext) -> None:
        if ctx.session_id is not None and ctx.request_id is not None:
            self._calls[_key(ctx.session_id, ctx.request_id)] = ctx

    def remove(self, ctx: CallContext) -> None:
        if ctx.session_id is not None and ctx.request_id is not None:
            self._calls.pop(_key(ctx.session_id, ctx.request_id), None)

    def _cancel_local(self, session_id: str, request_id: RequestId) -> bool:
        ctx = self._calls.get(_key(session_id, request_id))
        if ctx is None:
            return False
        ctx.cancel()
        return True

    async def cancel(self, session_id: str, request_id: Any) -> None:
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            return
        if self._cancel_local(session_id, request_id) or self._bus is None:
            return
        with contextlib.suppress(nats.errors.Error):
            await self._bus.nc.publish(
                EDGE_CANCEL_SUBJECT, _encoder.encode(CancelCall(session_id=session_id, request_id=request_id))
            )

    async def _on_cancel(self, msg: Msg) -> None:
        with contextlib.suppress(msgspec.DecodeError):
            notice = _decoder.decode(msg.data)
            self._cancel_local(notice.session_id, notice.request_id)
