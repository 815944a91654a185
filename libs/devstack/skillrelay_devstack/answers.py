"""Serving a service's ``Answers`` (its FastStream request handlers) for a test: in memory, through
FastStream's ``TestNatsBroker`` (no server, milliseconds), or on the real nats-server. Handler tests
run the same cases both ways (the ``answers_url`` fixture of ``skillrelay_devstack.testing``); the real
server stays the judge, the in-memory run keeps the fast loop fast."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from faststream.nats import NatsBroker, TestNatsBroker

from skillrelay_common.broker import Answers, service_broker
from skillrelay_common.schemas.base import Message, Unavailable
from skillrelay_common.subjects import Endpoint
from skillrelay_worker.correlation import CORRELATION_HEADER

ReqT = TypeVar("ReqT", bound=Message)
RepT = TypeVar("RepT")

# The in-memory broker never dials it.
IN_MEMORY = "nats://in-memory.invalid:4222"


@dataclass
class Reply:
    """A decoded reply and the correlation id it came back with."""

    value: Any
    correlation_id: str | None


@dataclass
class Asker:
    """Sends requests to the served answers the way a ``Bus`` would (JSON body, correlation header)."""

    broker: NatsBroker

    async def raw(
        self, subject: str, body: bytes, correlation_id: str = "test-cid"
    ) -> tuple[bytes, str | None]:
        response = await self.broker.request(
            body, subject, headers={CORRELATION_HEADER: correlation_id}, timeout=10.0
        )
        return response.body, (response.headers or {}).get(CORRELATION_HEADER)

    async def ask(self, endpoint: Endpoint[ReqT, RepT], message: ReqT) -> RepT | Unavailable:
        return (await self.ask_with_id(endpoint, message)).value  # type: ignore[no-any-return]

    async def ask_with_id(self, endpoint: Endpoint[ReqT, Any], message: ReqT) -> Reply:
        body, cid = await self.raw(endpoint.subject, msgspec.json.encode(message))
        return Reply(msgspec.json.decode(body, type=endpoint.reply | Unavailable), cid)


@asynccontextmanager
async def serving(answers: Answers, nats_url: str | None) -> AsyncIterator[Asker]:
    """``answers`` served by a FastStream broker: in memory when ``nats_url`` is None, else on that
    server (its max_payload then applies to replies, as in a service)."""
    broker = service_broker(nats_url or IN_MEMORY, answers.instance_id, routers=(answers.router,))
    if nats_url is None:
        async with TestNatsBroker(broker) as patched:
            yield Asker(patched)
        return
    connection = await broker.connect()
    answers.max_payload = connection.max_payload
    await broker.start()
    try:
        yield Asker(broker)
    finally:
        await broker.stop()
