"""A call's answer sink (``ctx.sink``): the POST's ``CallStream`` and an adopted call's ``StoredCall``
bind the context, keep it in flight until released, and end the answer with the response or, for a
cancelled call, with none."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_edge.access.credentials import Principal
from skillrelay_edge.calls.cancellation import InFlightCalls
from skillrelay_edge.calls.context import NO_SINK, AdoptCall, CallContext, ClientRequestError
from skillrelay_edge.calls.local_relay import LocalClientResponseRelay
from skillrelay_edge.calls.stored_call import StoredCall
from skillrelay_edge.calls.streaming import CallStream

INTEGRATION = IntegrationInfo(id="mcpserver_1", owner_id="user_1", name="n", skillset_id="skillset_1")
RESPONSE = {"jsonrpc": "2.0", "id": 7, "result": {"content": []}}


def _ctx() -> CallContext:
    return CallContext(
        method="tools/call",
        name="t",
        integration=INTEGRATION,
        principal=Principal("static", "static:v1", 1),
        session_id="session-1",
        request_id=7,
        progress_token="p",
    )


class Store:
    """The ``EventStore`` calls a sink makes: (stream id, data, final, worker seq)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes, bool, int]] = []

    async def append(
        self, session_id: str, stream_id: str, data: bytes, *, final: bool = False, worker_seq: int = 0
    ) -> str:
        self.events.append((stream_id, data, final, worker_seq))
        return f"{stream_id}-{len(self.events)}"


class Owner:
    """The endpoint's side of a ``CallStream``: what it recorded and the SSE bytes it sent."""

    def __init__(self) -> None:
        self.recorded: list[tuple[str, str | None]] = []
        self.sent = b""
        self.ctx: CallContext | None = None

    async def record(self, stream_id: str, call_id: str | None) -> None:
        self.recorded.append((stream_id, call_id))

    async def send(self, frames: AsyncIterator[bytes], ctx: CallContext | None) -> None:
        self.ctx = ctx
        async for chunk in frames:
            self.sent += chunk


def _messages(sse: bytes) -> list[Any]:
    return [json.loads(line[6:]) for line in sse.decode().splitlines() if line.startswith("data: {")]


def _stream(owner: Owner, store: Store | None, inflight: InFlightCalls) -> CallStream:
    return CallStream(
        session_id="session-1",
        relay=LocalClientResponseRelay(),
        store=store,  # type: ignore[arg-type]
        owner=owner,
        inflight=inflight,
    )


def _stored(store: Store, adopt: AdoptCall, inflight: InFlightCalls | None) -> StoredCall:
    return StoredCall(
        store=store,  # type: ignore[arg-type]
        relay=LocalClientResponseRelay(),
        session_id="session-1",
        stream_id="s1",
        adopt=adopt,
        inflight=inflight,
    )


async def test_a_context_starts_with_no_sink() -> None:
    ctx = _ctx()
    assert ctx.sink is NO_SINK
    await ctx.progress(1)  # goes nowhere
    with pytest.raises(ClientRequestError):
        await ctx.request_client("roots/list", {}, 1.0)


async def test_a_call_stream_carries_the_call_and_ends_with_its_response() -> None:
    owner, store, inflight = Owner(), Store(), InFlightCalls(None)
    stream = _stream(owner, store, inflight)
    ctx = _ctx()
    stream.bind(ctx)
    assert ctx.sink is stream and not stream.streaming
    ctx.worker_call_id, ctx.worker_seq = "call-1", 3
    await ctx.progress(50, 100)
    assert stream.streaming
    stream.release()
    assert ctx.sink is NO_SINK  # no reference cycle left between the context and its stream
    await stream.finish(RESPONSE)
    assert owner.ctx is ctx
    assert [message.get("method") for message in _messages(owner.sent)] == ["notifications/progress", None]
    assert _messages(owner.sent)[-1] == RESPONSE
    assert owner.recorded == [(stream.stream_id, "call-1")]  # recorded for adoption before the first event
    assert [(final, seq) for _, _, final, seq in store.events] == [(False, 3), (True, 0)]


async def test_a_call_is_in_flight_from_bind_to_release() -> None:
    inflight = InFlightCalls(None)
    stream = _stream(Owner(), None, inflight)
    ctx = _ctx()
    stream.bind(ctx)
    await inflight.cancel("session-1", 7)  # notifications/cancelled finds the bound call
    assert ctx.cancelled.is_set() and stream.cancelled
    other, released = _stream(Owner(), None, inflight), _ctx()
    other.bind(released)
    other.release()
    await inflight.cancel("session-1", 7)
    assert not released.cancelled.is_set()  # released: no longer in flight


async def test_a_cancelled_streamed_call_ends_without_a_response() -> None:
    owner = Owner()
    stream = _stream(owner, None, InFlightCalls(None))
    ctx = _ctx()
    stream.bind(ctx)
    await ctx.log("info", "working")
    ctx.cancel()
    stream.release()
    await asyncio.wait_for(stream.finish(RESPONSE), 2.0)
    assert [message.get("method") for message in _messages(owner.sent)] == ["notifications/message"]


async def test_a_stored_call_appends_everything_to_the_stored_stream() -> None:
    store, inflight = Store(), InFlightCalls(None)
    call = _stored(store, AdoptCall("call-1", 4), inflight)
    ctx = _ctx()
    call.bind(ctx)
    assert ctx.sink is call and ctx.adopt == AdoptCall("call-1", 4)
    ctx.worker_seq = 5
    await ctx.progress(1)
    call.release()
    assert ctx.sink is NO_SINK
    await inflight.cancel("session-1", 7)
    assert not ctx.cancelled.is_set()  # released before: no longer in flight
    await call.finish(RESPONSE)
    assert [(stream, final, seq) for stream, _, final, seq in store.events] == [
        ("s1", False, 5),
        ("s1", True, 0),
    ]
    assert json.loads(store.events[-1][1]) == RESPONSE


async def test_a_cancelled_stored_call_ends_with_an_empty_final_event() -> None:
    store = Store()
    call = _stored(store, AdoptCall("call-1", 0), None)
    ctx = _ctx()
    call.bind(ctx)
    ctx.cancel()
    call.release()
    await call.finish(RESPONSE)
    assert store.events == [("s1", b"", True, 0)]
