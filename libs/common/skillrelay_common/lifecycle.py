"""What every service does at start and stop: connect NATS, open and migrate its database schema,
create the streams it produces to, let the service wire its use cases, serve, report readiness, and
drain on shutdown. The one shape of composition root every service follows (docs/structure.md):

    resources = ServiceResources(SERVICE, settings, schema=…, streams=…, serves=SERVED_ENDPOINTS)
    await resources.start(wire)   # wire(Wiring): build use cases from wiring.bus / wiring.engine,
                                  # register NATS entry points on wiring.answers / wiring.consumers
    …                             # the HTTP app (or run_until_signalled) around it
    await resources.stop()

Request handlers and event consumers are FastStream subscribers (``skillrelay_common.broker``); the
``Bus`` shares the broker's NATS connection for requests, events and the lean subscriptions that
stay off FastStream (the edge's hot path)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from faststream.nats import NatsBroker, NatsRouter
from sqlalchemy.ext.asyncio import AsyncEngine

from skillrelay_common.broker import Answers, service_broker
from skillrelay_common.db import create_engine, database_ready, migrate
from skillrelay_common.messaging import Bus
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import Endpoint, Stream

_log = structlog.get_logger("skillrelay.lifecycle")


@dataclass(frozen=True)
class Wiring:
    """What a service's wiring step gets: its connections, and where its NATS entry points go."""

    settings: Settings
    bus: Bus
    engine: AsyncEngine | None
    # Request endpoints (FastStream subscribers answering with msgspec replies).
    answers: Answers
    # Event consumers (FastStream subscribers, e.g. JetStream pull consumers).
    consumers: NatsRouter

    def require_engine(self) -> AsyncEngine:
        if self.engine is None:
            raise RuntimeError("this service was declared without a database schema")
        return self.engine


Wire = Callable[[Wiring], Awaitable[None] | None]


@dataclass
class ServiceResources:
    """The connections of one service instance."""

    service: str
    settings: Settings
    schema: str | None = None
    migrations_dir: Path | None = None
    streams: tuple[Stream, ...] = ()
    # The endpoints this service answers; start() refuses to run if the handlers registered differ.
    serves: tuple[Endpoint[Any, Any], ...] = ()
    nats_options: dict[str, Any] = field(default_factory=dict)
    bus: Bus = field(init=False)
    broker: NatsBroker = field(init=False)
    engine: AsyncEngine | None = field(default=None, init=False)

    async def start(self, wire: Wire | None = None) -> None:
        """Connect, migrate, create streams, let ``wire`` build the service and register its entry
        points, then start serving."""
        instance_id = self.settings.instance_id or f"{self.service}-{uuid.uuid4().hex[:8]}"
        answers = Answers(self.service, instance_id)
        consumers = NatsRouter()
        self.broker = service_broker(self.settings.nats.require_url(), instance_id, **self.nats_options)
        nc = await self.broker.connect()
        answers.max_payload = nc.max_payload
        self.bus = Bus(nc, self.service, instance_id, self.settings.nats.request_timeout)
        if self.schema is not None:
            self.engine = create_engine(self.settings.database)
            if self.migrations_dir is not None:
                await migrate(self.engine, self.schema, self.migrations_dir)
        for stream in self.streams:
            await self.bus.ensure_stream(stream)
        if wire is not None:
            result = wire(Wiring(self.settings, self.bus, self.engine, answers, consumers))
            if result is not None:
                await result
        served = [*answers.served_endpoints, *self.bus.served_endpoints]
        registered = {endpoint.subject for endpoint in served}
        declared = {endpoint.subject for endpoint in self.serves}
        if registered != declared:
            raise RuntimeError(f"{self.service} serves {sorted(registered)} but declares {sorted(declared)}")
        self.broker.include_routers(answers.router, consumers)
        await self.broker.start()
        await self.bus.start()
        _log.info("service.started", instance_id=instance_id)

    async def stop(self) -> None:
        """Stop the subscribers (FastStream waits for handlers in flight), then drain the connection."""
        await self.broker.stop()
        await self.bus.close()
        if self.engine is not None:
            await self.engine.dispose()
        _log.info("service.stopped")

    async def readiness(self) -> dict[str, bool]:
        checks = {"nats": self.bus.nc.is_connected}
        if self.engine is not None:
            checks["database"] = await database_ready(self.engine)
        return checks
