"""What an ability runner sees of the MCP request it serves, and the runner protocol.

One ``CallContext`` is built per client request that runs an ability (``tools/call``,
``resources/read``, ``prompts/get``, ``completion/complete``). Runners (``abilities/static.py``,
``abilities/http.py``, ``abilities/worker.py``) implement ``AbilityRunner`` and never touch HTTP:
everything they send to the client goes through ``notify`` / ``request_client`` to the context's
``AnswerSink``, which routes it onto this request's own SSE stream (the spec's "related request" routing).

Result shapes returned by ``AbilityRunner.run`` (plain JSON-ready dicts, camelCase MCP fields):

- ``tools/call``: ``{"content": [...], "isError"?: bool, "structuredContent"?: {...}}``
- ``resources/read``: ``{"contents": [{"uri", "mimeType"?, "text" | "blob"}, ...]}``;
  ``arguments`` is ``{"uri": <uri>, **<template variables>}``
- ``prompts/get``: ``{"messages": [...], "description"?: str}``
- ``completion/complete``: ``{"completion": {"values": [...], "total"?, "hasMore"?}}``;
  ``arguments`` is the request's params (``ref``, ``argument``, ``context``)

A runner raises ``AbilityError`` for a failure the client should see: for ``tools/call`` the edge turns
it into an ``isError`` result, for the other methods into a JSON-RPC error with ``code``.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from skillrelay_common.schemas.abilities import SourceDef
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_worker.protocol import LOG_LEVELS

RequestId = str | int
ProgressToken = str | int
CallMethod = Literal["tools/call", "resources/read", "prompts/get", "completion/complete"]

# RFC 5424 severities as MCP names them (``LOG_LEVELS``, lowest first; the worker SDK filters by them too).
_LOG_RANK = {name: rank for rank, name in enumerate(LOG_LEVELS)}

# JSON-RPC / MCP error codes used across the edge.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_TIMEOUT = -32001
RESOURCE_NOT_FOUND = -32002


class PrincipalLike(Protocol):
    """Who is calling: ``credentials.Principal`` satisfies this."""

    @property
    def kind(self) -> str: ...

    @property
    def id(self) -> str: ...


class ClientRequestError(Exception):
    """The client answered a server-to-client request with an error, did not answer in time
    (``code == REQUEST_TIMEOUT``), or cannot be asked (no session / capability missing)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class AbilityError(Exception):
    """An ability failed in a way the client should see (message is safe to show)."""

    def __init__(self, message: str, code: int = INTERNAL_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# The final answer of a streamed call that no replica can finish any more (its holder died).
CALL_LOST_MESSAGE = "the edge replica running this call stopped and the call was lost; please call again"


@dataclass(frozen=True)
class AdoptCall:
    """Marks a call re-run by a replica adopting it: the worker runner takes over worker call
    ``call_id`` (events after ``after_seq``) instead of starting a new one."""

    call_id: str
    after_seq: int


class AnswerSink(Protocol):
    """Where one call's answer goes: everything it sends the client before its result, and the result.

    A ``CallContext`` holds its sink as ``ctx.sink`` (one reference, set by ``bind``). Implemented by
    ``calls.streaming.CallStream`` (the live HTTP answer, either era: plain JSON until the call sends
    something before its result, then an SSE stream), ``calls.stored_call.StoredCall`` (a call adopted
    from a replica that died: its stored SSE stream) and ``NO_SINK`` (nothing can be sent)."""

    def bind(self, ctx: CallContext) -> None:
        """The call starts with ``ctx``: ``ctx.sink`` is this sink from now on, and the call is in flight
        (``notifications/cancelled`` finds it)."""
        ...

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """A notification before the result (the answer becomes a stream if it is not one yet)."""
        ...

    async def request_client(self, method: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Ask the client and return its result; raises ``ClientRequestError``."""
        ...

    @property
    def cancelled(self) -> bool:
        """Whether the client cancelled the call."""
        ...

    async def finish(self, response: dict[str, Any]) -> None:
        """The call's last word: ``response``, or, when the client cancelled the call, none at all (MCP:
        a cancelled request gets no response; the stream just ends)."""
        ...

    def release(self) -> None:
        """The call is over: no longer in flight, and its context forgets this sink (``detach``)."""
        ...


class CallsInFlight(Protocol):
    """The calls running on this replica, found by ``notifications/cancelled``
    (``calls.cancellation.InFlightCalls``): a sink adds its call when bound and removes it when released."""

    def add(self, ctx: CallContext) -> None: ...

    def remove(self, ctx: CallContext) -> None: ...


class _NoSink:
    """The sink of a context no request stream is bound to, or no longer (``CallContext.detach``):
    notifications go nowhere, the client cannot be asked."""

    __slots__ = ()

    def bind(self, ctx: CallContext) -> None:
        ctx.sink = self

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        return None

    async def request_client(self, method: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        raise ClientRequestError(INVALID_REQUEST, "this request cannot carry server-to-client requests")

    @property
    def cancelled(self) -> bool:
        return False

    async def finish(self, response: dict[str, Any]) -> None:
        return None

    def release(self) -> None:
        return None


NO_SINK: AnswerSink = _NoSink()


class BoundSink(ABC):
    """What every request's sink does with its call the same way: holds the context it is bound to,
    which is in flight (in ``inflight``) from ``bind`` to ``release``. Subclasses say where the
    messages go."""

    def __init__(self, inflight: CallsInFlight | None) -> None:
        self._inflight = inflight
        self.ctx: CallContext | None = None

    def bind(self, ctx: CallContext) -> None:
        self.ctx = ctx
        ctx.sink = self
        if self._inflight is not None:
            self._inflight.add(ctx)

    def release(self) -> None:
        ctx = self.ctx
        if ctx is not None:
            if self._inflight is not None:
                self._inflight.remove(ctx)
            ctx.detach()  # no reference cycle left between the context and this sink

    @property
    def cancelled(self) -> bool:
        return self.ctx is not None and self.ctx.cancelled.is_set()

    @abstractmethod
    async def notify(self, method: str, params: dict[str, Any]) -> None: ...

    @abstractmethod
    async def request_client(self, method: str, params: dict[str, Any], timeout: float) -> dict[str, Any]: ...

    @abstractmethod
    async def finish(self, response: dict[str, Any]) -> None: ...


@dataclass(eq=False)
class CallContext:
    """One client request being served by an ability."""

    method: CallMethod
    # Tool or prompt name, resource URI (for resources/read) or the completion ref's name/uri.
    name: str
    integration: IntegrationInfo
    principal: PrincipalLike
    session_id: str | None = None
    request_id: RequestId | None = None
    progress_token: ProgressToken | None = None
    # Minimum level the client asked for with logging/setLevel (None: the client did not ask).
    log_level: str | None = None
    protocol_version: str = "2025-11-25"
    client_capabilities: dict[str, Any] = field(default_factory=dict)
    # The request's ``_meta`` without the progress token (which is ``progress_token``).
    meta: dict[str, Any] = field(default_factory=dict)
    # The AbilityDef / ResourceDef / PromptDef being served (None for completion without a target).
    target: Any = None
    # The skillset source ``target`` forwards to (its handler is a source handler), else None.
    source: SourceDef | None = None
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    # Run by ``cancel()``: lets a runner react at once without a task waiting on ``cancelled``.
    _on_cancel: list[Callable[[], None]] = field(default_factory=list, repr=False)
    # Set when another replica's call is being adopted (see ``AdoptCall``).
    adopt: AdoptCall | None = None
    # The worker call serving this request, and the ``seq`` of the worker event being relayed: stored
    # with the call's SSE events so a replica adopting it knows where to resume.
    worker_call_id: str | None = None
    worker_seq: int = 0
    # Stateless era: no log messages unless the request's ``_meta`` asked for them.
    logs_off: bool = False
    # Stateless era: questions to the client become an ``input_required`` result instead of
    # server-to-client requests (``modern.inputs.InputExchange``); None in the session era.
    inputs: Any = None
    # Stateless era, Tasks extension: where the call goes when its handler starts a task
    # (``tasks.service.TaskHost``); None when this request cannot be answered with a task.
    tasks: Any = None
    # Where everything the call sends goes (``AnswerSink``), set when a sink binds this context.
    sink: AnswerSink = field(default=NO_SINK, repr=False)

    def detach(self) -> None:
        """The request is over: forget its sink. The sink holds this context, a reference cycle that
        would keep the whole request (its HTTP task, buffers, closures) alive until the cyclic GC runs,
        which then costs more than the call."""
        self.sink = NO_SINK

    def cancel(self) -> None:
        """The client cancelled the request (``notifications/cancelled``)."""
        if self.cancelled.is_set():
            return
        self.cancelled.set()
        for callback in self._on_cancel:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the request is cancelled (at once if it already is)."""
        if self.cancelled.is_set():
            callback()
        else:
            self._on_cancel.append(callback)

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """Send a notification on this request's stream (before its result)."""
        await self.sink.notify(method, params)

    async def request_client(
        self, method: str, params: dict[str, Any], timeout: float = 60.0
    ) -> dict[str, Any]:
        """Ask the client (``sampling/createMessage``, ``elicitation/create``, ``roots/list``) and return
        its result; raises ``ClientRequestError`` on an error answer, a timeout or cancellation."""
        return await self.sink.request_client(method, params, timeout)

    def wants_log(self, level: str) -> bool:
        """Whether a ``notifications/message`` at ``level`` passes the client's logging/setLevel."""
        if self.logs_off:
            return False
        if self.log_level is None:
            return True
        return _LOG_RANK.get(level, 0) >= _LOG_RANK.get(self.log_level, 0)

    async def log(self, level: str, data: Any, logger: str | None = None) -> None:
        """``notifications/message`` filtered by the client's level."""
        if not self.wants_log(level):
            return
        params: dict[str, Any] = {"level": level, "data": data}
        if logger is not None:
            params["logger"] = logger
        await self.notify("notifications/message", params)

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """``notifications/progress`` for this request; nothing when the client gave no token."""
        if self.progress_token is None:
            return
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self.notify("notifications/progress", params)


class AbilityRunner(Protocol):
    """Runs one handler kind (``static``, ``http``, ``worker``)."""

    async def run(self, ctx: CallContext, handler: Any, arguments: dict[str, Any]) -> dict[str, Any]: ...


class ClientResponseRelay(Protocol):
    """How server-to-client requests get their answers, whichever edge replica receives the client's
    POST (built by the worker engineer in ``calls/relay.py``; the edge has an in-process fallback).

    ``expect`` is synchronous so the waiter exists before the request is written to the stream."""

    def new_request_id(self) -> RequestId:
        """An id for a server-to-client request whose answer can be routed back to this replica."""
        ...

    def expect(self, session_id: str, request_id: RequestId) -> Awaitable[dict[str, Any]]:
        """A waiter resolved with the client's JSON-RPC response message (``result`` or ``error``)."""
        ...

    def forget(self, session_id: str, request_id: RequestId) -> None:
        """Drop a waiter (timeout or cancellation)."""
        ...

    async def deliver_client_response(self, session_id: str, message: dict[str, Any]) -> None:
        """A POST carried a JSON-RPC response: route it to whichever replica is waiting for it."""
        ...
