"""What every service does at start and stop: connect NATS, open and migrate its database schema,
create the streams it produces to, report readiness, and drain on shutdown."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from skillrelay_common.db import create_engine, database_ready, migrate
from skillrelay_common.messaging import Bus
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import Endpoint, Stream

_log = structlog.get_logger("skillrelay.lifecycle")


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
    engine: AsyncEngine | None = field(default=None, init=False)

    async def start(self, register: Callable[[Bus], Awaitable[None] | None] | None = None) -> None:
        """Connect, migrate, create streams, let ``register`` add handlers, then start serving."""
        self.bus = await Bus.connect(
            self.settings.nats.require_url(),
            self.service,
            instance_id=self.settings.instance_id,
            request_timeout=self.settings.nats.request_timeout,
            **self.nats_options,
        )
        if self.schema is not None:
            self.engine = create_engine(self.settings.database)
            if self.migrations_dir is not None:
                await migrate(self.engine, self.schema, self.migrations_dir)
        for stream in self.streams:
            await self.bus.ensure_stream(stream)
        if register is not None:
            result = register(self.bus)
            if result is not None:
                await result
        registered = {endpoint.subject for endpoint in self.bus.served_endpoints}
        declared = {endpoint.subject for endpoint in self.serves}
        if registered != declared:
            raise RuntimeError(f"{self.service} serves {sorted(registered)} but declares {sorted(declared)}")
        await self.bus.start()
        _log.info("service.started", instance_id=self.bus.instance_id)

    async def stop(self) -> None:
        await self.bus.close()
        if self.engine is not None:
            await self.engine.dispose()
        _log.info("service.stopped")

    async def readiness(self) -> dict[str, bool]:
        checks = {"nats": self.bus.nc.is_connected}
        if self.engine is not None:
            checks["database"] = await database_ready(self.engine)
        return checks
