"""Adopting a streamed call whose edge replica died, so its client still gets every event and the answer.

The replica holding a call records it when its answer becomes an SSE stream (``call_records``). A client
that lost the stream resumes it with ``GET`` + ``Last-Event-ID`` on any replica; while that replica
follows a request stream with no final event, it asks the holder whether it is alive (at once, then
every ``recheck_seconds``). A dead holder's call is claimed (one replica wins) and re-run through the
normal dispatch path with ``CallContext.adopt`` set: the worker runner then takes the running (or
finished but undelivered) worker call over instead of starting it again, from the last worker ``seq``
stored. What it produces is appended to the same stored stream, which the ``GET`` delivers. A call that
cannot be adopted (not a worker call, or no worker holds it any more) gets a final error instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog

from skillrelay_edge.calls.call_records import CallRecord, CallRecords
from skillrelay_edge.calls.context import (
    CALL_LOST_MESSAGE,
    INTERNAL_ERROR,
    AdoptCall,
    CallsInFlight,
    ClientResponseRelay,
    RequestId,
)
from skillrelay_edge.calls.liveness import ReplicaLiveness
from skillrelay_edge.calls.sse import EventStore
from skillrelay_edge.calls.stored_call import StoredCall
from skillrelay_edge.transport import jsonrpc

_log = structlog.get_logger("skillrelay.edge.adoption")

# Re-runs a recorded request with the given sink and returns its JSON-RPC response.
Rerun = Callable[[CallRecord, StoredCall], Awaitable[dict[str, Any]]]


def lost_response(record: CallRecord) -> dict[str, Any]:
    """The final answer of a call nobody can finish: an ``isError`` tool result, else -32603."""
    if record.method == "tools/call":
        result = {"content": [{"type": "text", "text": CALL_LOST_MESSAGE}], "isError": True}
        return jsonrpc.result(record.request_id, result)
    return jsonrpc.error(record.request_id, INTERNAL_ERROR, CALL_LOST_MESSAGE)


class CallAdoption:
    def __init__(
        self,
        *,
        records: CallRecords,
        liveness: ReplicaLiveness,
        store: EventStore,
        relay: ClientResponseRelay,
        inflight: CallsInFlight | None = None,
        recheck_seconds: float = 2.0,
    ) -> None:
        self._records = records
        self._liveness = liveness
        self._store = store
        self._relay = relay
        self._inflight = inflight
        self.recheck_seconds = recheck_seconds
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def edge_key(self) -> str:
        return self._liveness.edge_key

    async def start(self) -> None:
        await self._records.ensure()
        await self._liveness.start()

    async def stop(self) -> None:
        await self._liveness.stop()
        # Calls adopted here and still running: another replica adopts them again once we are gone.
        for task in list(self._tasks):
            task.cancel()

    # -- the holding replica -----------------------------------------------------------------------

    async def record(
        self,
        session_id: str,
        stream_id: str,
        *,
        call_id: str | None,
        method: str,
        params: dict[str, Any],
        request_id: RequestId | None,
        protocol_version: str,
    ) -> None:
        """Remember that this replica holds the call streamed on ``stream_id`` (failures only logged:
        the live stream matters more)."""
        record = CallRecord(
            holder=self.edge_key,
            call_id=call_id,
            method=method,
            params=params,
            request_id=request_id,
            protocol_version=protocol_version,
        )
        try:
            await self._records.put(session_id, stream_id, record)
        except Exception as exc:
            _log.warning("mcp.call.record.failed", error=type(exc).__name__)

    # -- a replica serving GET + Last-Event-ID ------------------------------------------------------

    def watch(
        self, frames: AsyncIterator[bytes], session_id: str, stream_id: str, rerun: Rerun
    ) -> AsyncIterator[bytes]:
        """``frames`` of a resumed request stream, watching its holder while the client follows it."""

        async def watched() -> AsyncIterator[bytes]:
            watcher = asyncio.create_task(self._watch(session_id, stream_id, rerun))
            try:
                async for chunk in frames:
                    yield chunk
            finally:
                watcher.cancel()
                with contextlib.suppress(Exception):
                    await frames.aclose()  # type: ignore[attr-defined]

        return watched()

    async def _watch(self, session_id: str, stream_id: str, rerun: Rerun) -> None:
        while True:
            try:
                if await self._check(session_id, stream_id, rerun):
                    return
            except Exception as exc:  # the store or NATS is in trouble: look again later
                _log.warning("mcp.call.watch.failed", error=type(exc).__name__)
            await asyncio.sleep(self.recheck_seconds)

    async def _check(self, session_id: str, stream_id: str, rerun: Rerun) -> bool:
        """True when there is nothing left to watch: the stream ended, this replica holds the call, or
        it has just adopted it."""
        last = await self._store.last(session_id, stream_id)
        if last is not None and last.final:
            return True
        found = await self._records.get(session_id, stream_id)
        if found is None:
            return False  # not recorded (yet): look again later
        record, revision = found
        if record.holder == self.edge_key:
            return True
        if await self._liveness.is_alive(record.holder):
            return False
        claimed = await self._records.claim(session_id, stream_id, record, revision, self.edge_key)
        if claimed is None:
            return False  # another replica won; watch that one
        after_seq = last.worker_seq if last is not None else 0
        _log.info("mcp.call.adopting", dead_holder=record.holder, after_seq=after_seq)
        task = asyncio.create_task(self._adopt(session_id, stream_id, claimed, after_seq, rerun))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _adopt(
        self, session_id: str, stream_id: str, record: CallRecord, after_seq: int, rerun: Rerun
    ) -> None:
        """Runs apart from the GET that triggered it: a client that disconnects again resumes later."""
        call = StoredCall(
            store=self._store,
            relay=self._relay,
            session_id=session_id,
            stream_id=stream_id,
            adopt=AdoptCall(record.call_id or "", after_seq),
            inflight=self._inflight,
        )
        response = lost_response(record)
        try:
            if record.call_id is not None:
                response = await rerun(record, call)
        except Exception:
            _log.exception("mcp.call.adopt.failed", method=record.method)
        finally:
            call.release()
        await call.finish(response)
