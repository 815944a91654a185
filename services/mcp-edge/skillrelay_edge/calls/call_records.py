"""Which edge replica holds a streamed call, kept so another replica can adopt the call if it dies.

One entry per request stream in the JetStream KV bucket ``MCP_CALLS`` (key ``<sessionKey>.<streamId>``,
kept as long as the stream's events): the holding replica's key, the worker call id (None for a
non-worker ability, which cannot be adopted), and the original JSON-RPC request. The request's params
may hold secrets, so they live only here (bounded retention) and are never logged. Claiming a call is
an ``update`` with the revision read, so of several replicas racing only one wins.
"""

from __future__ import annotations

from typing import Any

import msgspec
import nats.js.errors

from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import MCP_CALLS_BUCKET, MCP_CALLS_TTL_SECONDS
from skillrelay_edge.calls.kv_records import RecordBucket
from skillrelay_edge.calls.sse import session_key


class CallRecord(msgspec.Struct, kw_only=True):
    holder: str
    call_id: str | None
    method: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    request_id: str | int | None = None
    protocol_version: str


def _key(session_id: str, stream_id: str) -> str:
    return f"{session_key(session_id)}.{stream_id}"


class CallRecords:
    def __init__(self, bus: Bus) -> None:
        self._bucket = RecordBucket(bus, MCP_CALLS_BUCKET, MCP_CALLS_TTL_SECONDS, CallRecord)

    async def ensure(self) -> None:
        await self._bucket.ensure()

    async def put(self, session_id: str, stream_id: str, record: CallRecord) -> None:
        await (await self._bucket.kv()).put(_key(session_id, stream_id), self._bucket.encode(record))

    async def get(self, session_id: str, stream_id: str) -> tuple[CallRecord, int] | None:
        """The record and its revision (for ``claim``); None when there is none or it is unreadable."""
        return await self._bucket.get(_key(session_id, stream_id))

    async def claim(
        self, session_id: str, stream_id: str, record: CallRecord, revision: int, holder: str
    ) -> CallRecord | None:
        """Make ``holder`` the record's holder if it is still at ``revision``; None: another replica
        changed it first."""
        claimed = msgspec.structs.replace(record, holder=holder)
        try:
            await (await self._bucket.kv()).update(
                _key(session_id, stream_id), self._bucket.encode(claimed), last=revision
            )
        except nats.js.errors.KeyWrongLastSequenceError:
            return None
        return claimed
