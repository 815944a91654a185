"""A JetStream key-value bucket of msgspec records with their revisions, as the edge keeps its streamed
calls (``calls/call_records.py``) and its tasks (``tasks/store.py``): made with its limits when the
edge starts, opened on first use otherwise, and read back as ``(record, revision)`` so a change can be
an ``update`` at the revision read."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec
import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from skillrelay_common.messaging import Bus

R = TypeVar("R", bound=msgspec.Struct)


class RecordBucket(Generic[R]):
    def __init__(self, bus: Bus, name: str, ttl_seconds: float, record_type: type[R]) -> None:
        self._bus = bus
        self._name = name
        self._ttl_seconds = ttl_seconds
        self._decoder = msgspec.json.Decoder(record_type)
        self._encoder = msgspec.json.Encoder()
        self._kv: KeyValue | None = None

    async def ensure(self) -> None:
        """Make the bucket; one that exists (perhaps made by an older release with other limits) is
        used as it is."""
        config = KeyValueConfig(bucket=self._name, ttl=self._ttl_seconds, history=1, storage=StorageType.FILE)
        try:
            self._kv = await self._bus.js.create_key_value(config)
        except nats.js.errors.BadRequestError:
            self._kv = await self._bus.js.key_value(self._name)

    async def kv(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._bus.js.key_value(self._name)
        return self._kv

    def encode(self, record: R) -> bytes:
        return self._encoder.encode(record)

    async def get(self, key: str) -> tuple[R, int] | None:
        """The record and its revision; None when there is none or it is unreadable."""
        try:
            entry = await (await self.kv()).get(key)
        except nats.js.errors.KeyNotFoundError:
            return None
        if entry.value is None or entry.revision is None:
            return None
        try:
            return self._decoder.decode(entry.value), entry.revision
        except msgspec.DecodeError:
            return None
