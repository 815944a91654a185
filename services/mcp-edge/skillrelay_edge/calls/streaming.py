"""The messages one client request sends before its result, and how they reach the client.

A call runs in its HTTP request's own task and starts in JSON mode: if its result is the first thing
it produces, the answer is a plain ``application/json`` response (the cheap path: no other task is
involved). If it first sends a notification or a server-to-client request, the answer becomes an SSE
stream, sent by a task of its own (``StreamOwner.send``) while the call goes on, carrying those messages
in order and then the result. In SSE mode a pump task stores each event (for resumption on any replica)
independently of the HTTP connection, so a client that drops the stream can pick it up again with
``Last-Event-ID``. Before the first event the pump calls ``StreamOwner.record`` (the endpoint records
the call there, so another replica can adopt it should this one die), and every stored event keeps the
worker ``seq`` that produced it.

``CallStream`` is the call's ``AnswerSink``; its ``StreamOwner`` is the endpoint's side of one request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections.abc import AsyncIterator
from typing import Any, Protocol

import structlog

from skillrelay_edge.calls.client_requests import ask_client
from skillrelay_edge.calls.context import (
    INVALID_REQUEST,
    BoundSink,
    CallContext,
    CallsInFlight,
    ClientRequestError,
    ClientResponseRelay,
)
from skillrelay_edge.calls.sse import EventStore, frame, priming_frame
from skillrelay_edge.transport import jsonrpc

_log = structlog.get_logger("skillrelay.edge.streaming")
# (message, final, worker seq): the worker event seq behind the message, or 0; a final None: the call
# was cancelled, so it ends without a response.
_Item = tuple[dict[str, Any] | None, bool, int]


class StreamOwner(Protocol):
    """The endpoint's side of one call whose answer may become a stream. It must not refer to the
    ``CallStream`` (which refers to it): that cycle would keep every finished request alive until the
    cyclic GC runs."""

    async def record(self, stream_id: str, call_id: str | None) -> None:
        """The answer became stream ``stream_id`` (of worker call ``call_id``, if any): remember the call
        so another replica can adopt it. Called before the first event, with a store and a session."""
        ...

    async def send(self, frames: AsyncIterator[bytes], ctx: CallContext | None) -> None:
        """Send the SSE answer ``frames`` (in a task of its own, while the call ``ctx`` goes on)."""
        ...


def new_stream_id() -> str:
    return secrets.token_hex(8)


class CallStream(BoundSink):
    """The ``AnswerSink`` of a call answering its own HTTP request: binds a ``CallContext`` to this
    request's outgoing messages."""

    def __init__(
        self,
        *,
        session_id: str | None,
        relay: ClientResponseRelay,
        store: EventStore | None,
        owner: StreamOwner,
        inflight: CallsInFlight | None = None,
        priming_retry_ms: int | None = None,
        event_ids: bool = True,
    ) -> None:
        super().__init__(inflight)
        self._event_ids = event_ids
        self._owner = owner
        self.session_id = session_id
        self._stream_id: str | None = None
        self._relay = relay
        self._store = store
        # SEP-1699 (2025-11-25): an event with an id and no data first, so a client whose stream breaks
        # before anything else arrived can still resume it (GET + Last-Event-ID) on any replica.
        self._priming_retry_ms = priming_retry_ms
        # Made by the first message sent before the result: from then on the answer is a stream.
        self._queue: asyncio.Queue[_Item] | None = None
        self._counter = itertools.count(1)
        self._pumping: asyncio.Task[None] | None = None  # kept: the loop holds tasks weakly
        self._sending: asyncio.Task[None] | None = None

    @property
    def stream_id(self) -> str:
        # Made only when the answer becomes a stream: most calls answer with plain JSON.
        if self._stream_id is None:
            self._stream_id = new_stream_id()
        return self._stream_id

    # -- AnswerSink (``bind``, ``release`` and ``cancelled`` are ``BoundSink``'s) ------------------

    def _worker_seq(self) -> int:
        return self.ctx.worker_seq if self.ctx is not None else 0

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        self._put((jsonrpc.notification(method, params), False, self._worker_seq()))

    async def request_client(self, method: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.session_id is None:
            raise ClientRequestError(INVALID_REQUEST, "server-to-client requests need an MCP session")
        return await ask_client(
            self._relay, self.session_id, self.ctx, method, params, timeout, self._send_request
        )

    async def _send_request(self, message: dict[str, Any]) -> None:
        self._put((message, False, self._worker_seq()))

    async def finish(self, response: dict[str, Any]) -> None:
        """The stream's last event, and wait until the answer has gone out. Only for an answer that
        streams (``streaming``): the endpoint answers any other call in plain JSON itself."""
        # A cancelled call ends its stream without a response (MCP says it gets none).
        self._put((None if self.cancelled else response, True, 0))
        await self.sent()

    # -- the edge side ---------------------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        """Whether the call sent something before its result (its answer is an SSE stream)."""
        return self._queue is not None

    @property
    def answer_ended(self) -> bool:
        """Whether the SSE answer is over: the stream ended or its client went away."""
        return self._sending is not None and self._sending.done()

    def abandon(self) -> None:
        """The edge is stopping while the call runs: end the answer without a last event (nothing
        is stored as final), so the client resumes on another replica, which adopts the call."""
        for task in (self._pumping, self._sending):
            if task is not None:
                task.cancel()

    async def sent(self) -> None:
        """Wait until the SSE answer has gone out (or its client went away)."""
        if self._sending is not None:
            with contextlib.suppress(Exception):
                await self._sending

    def _put(self, item: _Item) -> None:
        if self._queue is None:
            # The first message before the result: start the SSE answer in a task of its own.
            self._queue = asyncio.Queue()
            out: asyncio.Queue[bytes | None] = asyncio.Queue()
            self._pumping = asyncio.create_task(self._pump(out))
            self._sending = asyncio.create_task(self._owner.send(_drain(out), self.ctx))
        self._queue.put_nowait(item)

    async def _pump(self, out: asyncio.Queue[bytes | None]) -> None:
        assert self._queue is not None
        if self._priming_retry_ms is not None and self._store is not None and self.session_id is not None:
            out.put_nowait(priming_frame(f"{self.stream_id}-0", self._priming_retry_ms))
        if self._store is not None and self.session_id is not None:
            call_id = self.ctx.worker_call_id if self.ctx is not None else None
            await self._owner.record(self.stream_id, call_id)
        while True:
            message, final, worker_seq = await self._queue.get()
            if message is None:
                # Stored as an empty final event, so a client resuming this stream sees it end too.
                await self._event_id(b"", final=True, worker_seq=0)
                out.put_nowait(None)
                return
            data = jsonrpc.encode(message)
            event_id = await self._event_id(data, final, worker_seq) if self._event_ids else None
            out.put_nowait(frame(data, event_id))
            if final:
                out.put_nowait(None)
                return

    async def _event_id(self, data: bytes, final: bool, worker_seq: int) -> str:
        if self._store is not None and self.session_id is not None:
            try:
                return await self._store.append(
                    self.session_id, self.stream_id, data, final=final, worker_seq=worker_seq
                )
            except Exception as exc:  # storage trouble must not break the live stream
                _log.warning("sse.store.failed", error=type(exc).__name__)
        return f"{self.stream_id}n{next(self._counter)}-0"


async def _drain(out: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
    while True:
        chunk = await out.get()
        if chunk is None:
            return
        yield chunk
