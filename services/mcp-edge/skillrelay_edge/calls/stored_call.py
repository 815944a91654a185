"""The ``AnswerSink`` of a call adopted from a replica that died: no HTTP answer of its own, everything
it sends (notifications, server-to-client requests, the final answer) is appended to the call's stored
SSE stream, which the client's ``GET`` + ``Last-Event-ID`` follows on whichever replica it reached."""

from __future__ import annotations

from typing import Any

import structlog

from skillrelay_edge.calls.client_requests import ask_client
from skillrelay_edge.calls.context import (
    AdoptCall,
    BoundSink,
    CallContext,
    CallsInFlight,
    ClientResponseRelay,
)
from skillrelay_edge.calls.sse import EventStore
from skillrelay_edge.transport import jsonrpc

_log = structlog.get_logger("skillrelay.edge.stored_call")


class StoredCall(BoundSink):
    def __init__(
        self,
        *,
        store: EventStore,
        relay: ClientResponseRelay,
        session_id: str,
        stream_id: str,
        adopt: AdoptCall,
        inflight: CallsInFlight | None = None,
    ) -> None:
        super().__init__(inflight)
        self._store = store
        self._relay = relay
        self.session_id = session_id
        self.stream_id = stream_id
        self._adopt = adopt

    def bind(self, ctx: CallContext) -> None:
        ctx.adopt = self._adopt
        super().bind(ctx)

    async def _append(self, message: dict[str, Any] | None, *, final: bool = False) -> None:
        seq = self.ctx.worker_seq if self.ctx is not None and not final else 0
        data = jsonrpc.encode(message) if message is not None else b""
        try:
            await self._store.append(self.session_id, self.stream_id, data, final=final, worker_seq=seq)
        except Exception as exc:
            _log.warning("sse.store.failed", error=type(exc).__name__, final=final)

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self._append(jsonrpc.notification(method, params))

    async def request_client(self, method: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        return await ask_client(self._relay, self.session_id, self.ctx, method, params, timeout, self._append)

    async def finish(self, response: dict[str, Any]) -> None:
        """Store the final answer; a cancelled call gets none (an empty final event ends the stream)."""
        if self.cancelled:
            await self._append(None, final=True)
        else:
            await self._append(response, final=True)
