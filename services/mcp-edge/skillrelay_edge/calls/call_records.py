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
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import MCP_CALLS_BUCKET, MCP_CALLS_TTL_SECONDS
from skillrelay_edge.calls.sse import session_key


class CallRecord(msgspec.Struct, kw_only=True):
    holder: str
    call_id: str | None
    method: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    request_id: str | int | None = None
    protocol_version: str


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(CallRecord)


def _key(session_id: str, stream_id: str) -> str:
    return f"{session_key(session_id)}.{stream_id}"


class CallRecords:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._kv: KeyValue | None = None

    async def ensure(self) -> None:
        config = KeyValueConfig(
            bucket=MCP_CALLS_BUCKET, ttl=MCP_CALLS_TTL_SECONDS, history=1, storage=StorageType.FILE
        )
        try:
            self._kv = await self._bus.js.create_key_value(config)
        except nats.js.errors.BadRequestError:
            # Exists (perhaps made by an older release with other limits): use it as it is.
            self._kv = await self._bus.js.key_value(MCP_CALLS_BUCKET)

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._bus.js.key_value(MCP_CALLS_BUCKET)
        return self._kv

    async def put(self, session_id: str, stream_id: str, record: CallRecord) -> None:
        await (await self._bucket()).put(_key(session_id, stream_id), _encoder.encode(record))

    async def get(self, session_id: str, stream_id: str) -> tuple[CallRecord, int] | None:
        """The record and its revision (for ``claim``); None when there is none or it is unreadable."""
        try:
            entry = await (await self._bucket()).get(_key(session_id, stream_id))
        except nats.js.errors.KeyNotFoundError:
            return None
        if entry.value is None or entry.revision is None:
            return None
        try:
            return _decoder.decode(entry.value), entry.revision
        except msgspec.DecodeError:
            return None

    async def claim(
        self, session_id: str, stream_id: str, record: CallRecord, revision: int, holder: str
    ) -> CallRecord | None:
        """Make ``holder`` the record's holder if it is still at ``revision``; None: another replica
        changed it first."""
        claimed = msgspec.structs.replace(record, holder=holder)
        try:
            await (await self._bucket()).update(
                _key(session_id, stream_id), _encoder.encode(claimed), last=revision
            )
        except nats.js.errors.KeyWrongLastSequenceError:
            return None
        return claimed
