"""Composition root of the sessions service (NATS only, no HTTP), in the shape every service has
(``skillrelay_common.lifecycle``): ``service_resources`` declares the connections, ``_wire`` builds the
use cases and registers the NATS entry points, ``SessionsRuntime`` runs them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from skillrelay_common.audit import AuditRecorder, audit_stream
from skillrelay_common.lifecycle import ServiceResources, Wiring
from skillrelay_common.logging import configure_logging
from skillrelay_common.runtime import run_until_signalled
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import AUTH_EVENTS, REGISTRY_EVENTS, SESSIONS_EVENTS
from skillrelay_common.tracing import configure_tracing
from skillrelay_sessions.events import JetStreamSessionEvents
from skillrelay_sessions.handlers import SERVED_ENDPOINTS, register_handlers
from skillrelay_sessions.repo import PostgresSessionStore
from skillrelay_sessions.revocations import register_revocation_consumers
from skillrelay_sessions.service import SessionPolicy, SessionService
from skillrelay_sessions.sweeper import ExpirySweeper

SERVICE = "sessions"


def service_resources(settings: Settings) -> ServiceResources:
    return ServiceResources(
        SERVICE,
        settings,
        schema="sessions",
        migrations_dir=Path(__file__).parent / "migrations",
        # The auth and registry streams are consumed here; creating them (same definition as their
        # producers) lets this service start first without waiting for them.
        streams=(SESSIONS_EVENTS, AUTH_EVENTS, REGISTRY_EVENTS),
        serves=SERVED_ENDPOINTS,
    )


@dataclass
class SessionsRuntime:
    """One sessions service instance: its connections, the use cases, the sweeper and the
    revocation listener. ``clock`` and the intervals are parameters so tests can control them."""

    settings: Settings
    clock: Callable[[], float] = time.time
    sweep_interval_seconds: float = 30.0
    sweep_grace_seconds: float = 60.0
    durable_prefix: str = "sessions"

    def __post_init__(self) -> None:
        self.resources = service_resources(self.settings)
        self.service: SessionService | None = None
        self.store: PostgresSessionStore | None = None
        self.sweeper: ExpirySweeper | None = None
        self.audit: AuditRecorder | None = None

    async def start(self) -> None:
        await self.resources.start(self._wire)
        assert self.service is not None and self.audit is not None
        await self.audit.start()
        self.sweeper = ExpirySweeper(self.service, self.sweep_interval_seconds)
        self.sweeper.start()

    def _wire(self, wiring: Wiring) -> None:
        bus = wiring.bus
        self.store = PostgresSessionStore(wiring.require_engine())
        policy = SessionPolicy(
            ttl_seconds=self.settings.session_ttl_seconds, sweep_grace_seconds=self.sweep_grace_seconds
        )
        self.audit = AuditRecorder(bus, SERVICE, stream=audit_stream(self.settings))
        self.service = SessionService(self.store, JetStreamSessionEvents(bus, self.audit), policy, self.clock)
        register_handlers(wiring.answers, self.service)
        register_revocation_consumers(wiring.consumers, self.service, durable_prefix=self.durable_prefix)

    async def stop(self) -> None:
        if self.sweeper is not None:
            await self.sweeper.stop()
        if self.audit is not None:
            await self.audit.stop()
        await self.resources.stop()


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json, service=SERVICE)
    configure_tracing(SERVICE, settings)
    runtime = SessionsRuntime(settings)
    run_until_signalled(runtime.start, runtime.stop)
