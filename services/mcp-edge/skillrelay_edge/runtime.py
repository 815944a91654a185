"""The edge's collaborators, built once NATS is connected, and started/stopped together."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from skillrelay_common.audit import AuditRecorder, audit_stream
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_common.settings import Settings
from skillrelay_edge.abilities.http import HttpRunner
from skillrelay_edge.abilities.mcp_source import McpSourceRunner, RegistryNotices
from skillrelay_edge.abilities.openapi import OpenApiRunner
from skillrelay_edge.abilities.parked import ParkedCalls
from skillrelay_edge.abilities.static import StaticRunner
from skillrelay_edge.abilities.worker import WorkerRunner
from skillrelay_edge.access.credentials import CredentialVerifier
from skillrelay_edge.calls.adoption import CallAdoption
from skillrelay_edge.calls.call_records import CallRecords
from skillrelay_edge.calls.cancellation import InFlightCalls
from skillrelay_edge.calls.context import AbilityRunner
from skillrelay_edge.calls.liveness import ReplicaLiveness
from skillrelay_edge.calls.relay import NatsClientResponseRelay
from skillrelay_edge.calls.sse import EventStore
from skillrelay_edge.integrations.catalog import Catalog
from skillrelay_edge.integrations.snapshots import SnapshotCache
from skillrelay_edge.modern.dispatch import ModernDispatcher
from skillrelay_edge.modern.listen import ListenStreams
from skillrelay_edge.modern.request_state import RequestStateCodec
from skillrelay_edge.protocol.dispatcher import Dispatcher
from skillrelay_edge.protocol.scope import Services
from skillrelay_edge.sessions.local import LocalSessionManager
from skillrelay_edge.sessions.manager import SessionManager
from skillrelay_edge.sessions.notifications import SessionStreams
from skillrelay_edge.tasks.service import TaskService
from skillrelay_edge.tasks.store import TaskStore
from skillrelay_edge.transport.endpoint import ALL_VERSIONS, McpEndpoint
from skillrelay_edge.transport.rules import HttpRules
from skillrelay_edge.transport.shutdown import on_server_exit

_log = structlog.get_logger("skillrelay.edge")


class EdgeRuntime:
    def __init__(
        self,
        settings: Settings,
        *,
        local_sessions: bool = False,
        runners: dict[str, AbilityRunner] | None = None,
    ) -> None:
        self.settings = settings
        self.extra_runners = runners or {}
        # Tests without a sessions service may keep sessions in this process (one replica only).
        self.local_sessions = local_sessions
        self.endpoint: McpEndpoint | None = None
        self._started: list[Any] = []
        self._remove_exit_hook: Callable[[], None] | None = None
        self.snapshots: SnapshotCache | None = None

    def build(self, bus: Bus) -> None:
        """Called from ``register_handlers``: construct everything and register NATS handlers."""
        settings = self.settings
        self.verifier = CredentialVerifier(bus, settings)
        self.verifier.register(bus)  # serves EDGE_CREDENTIALS_INVALIDATE
        self.sessions: SessionManager | LocalSessionManager = (
            LocalSessionManager(bus, ttl_seconds=settings.session_ttl_seconds)
            if self.local_sessions
            else SessionManager(bus, ttl_seconds=settings.session_ttl_seconds)
        )
        self.sessions.register(bus)
        self.relay = NatsClientResponseRelay(bus)
        self.audit = AuditRecorder(bus, "edge", stream=audit_stream(settings))
        self.snapshots = SnapshotCache(bus)
        self.store = EventStore(bus)
        self.streams = SessionStreams(bus, self.store)
        self.snapshots.add_listener(self.streams.on_change)
        # 2026-07-28 subscriptions/listen: in-process listeners fed by the same registry events.
        self.listens = ListenStreams()
        self.snapshots.add_listener(self.listens.on_change)
        self.verifier.add_revocation_listener(self.listens.end_integration)
        self.inflight = InFlightCalls(bus)
        self.http_runner = HttpRunner(allow_private_targets=settings.allow_private_http_targets)
        # Skillset sources' upstream MCP servers: SSRF-guarded by the same setting as http abilities.
        self.source_runner = McpSourceRunner(
            allow_private_targets=settings.allow_private_http_targets,
            notices=RegistryNotices(bus),
        )
        runners: dict[str, AbilityRunner] = {
            "static": StaticRunner(),
            "http": self.http_runner,
            "openapi": OpenApiRunner(self.http_runner.client),
            "mcp": self.source_runner,
        }
        # One key per replica: worker events come to workerev.<key>.*, other replicas ask whether it lives.
        self.edge_key = uuid.uuid4().hex[:12]
        # 2025-session upstreams' questions to 2026 clients: their calls wait here for a retry on any replica.
        self.parked = ParkedCalls(bus, self.edge_key)
        self.worker_runner = WorkerRunner(bus, nats_url=settings.nats.require_url(), edge_key=self.edge_key)
        runners["worker"] = self.worker_runner
        runners.update(self.extra_runners)
        for runner in runners.values():
            if isinstance(runner, McpSourceRunner):
                runner.parked = self.parked
        self.adoption = CallAdoption(
            records=CallRecords(bus),
            liveness=ReplicaLiveness(bus, self.edge_key),
            store=self.store,
            relay=self.relay,
            inflight=self.inflight,
        )
        services = Services(
            sessions=self.sessions, runners=runners, on_subscriptions=self.streams.publish_subscriptions
        )
        dispatcher = Dispatcher(services)
        # Tasks extension: tasks in a KV bucket every replica reads; this replica's worker runner
        # follows the calls of the tasks it created.
        self.task_store = TaskStore(bus)
        tasks = TaskService(self.task_store, self.worker_runner, self.edge_key)
        modern = ModernDispatcher(services, RequestStateCodec(settings.secret_key), ALL_VERSIONS, tasks)
        self.endpoint = McpEndpoint(
            rules=HttpRules(settings.http.edge_public_url, settings.http.host, settings.max_body_bytes),
            catalogs=self.snapshots,
            verifier=self.verifier,
            sessions=self.sessions,
            dispatcher=dispatcher,
            relay=self.relay,
            store=self.store,
            streams=self.streams,
            inflight=self.inflight,
            audit=self.audit,
            adoption=self.adoption,
            modern=modern,
            listens=self.listens,
        )

    async def lookup_integration(self, integration_id: str) -> IntegrationInfo | None:
        if self.snapshots is None:
            return None
        catalog = await self.snapshots.get(integration_id)
        return catalog.integration if isinstance(catalog, Catalog) else None

    async def start(self) -> None:
        await self.store.ensure()
        self._remove_exit_hook = on_server_exit(asyncio.get_running_loop(), self._server_exit)
        for part in (
            self.audit,
            self.snapshots,
            self.sessions,
            self.verifier,
            self.relay,
            self.inflight,
            self.streams,
            self.worker_runner,
            self.parked,
            self.adoption,
            self.task_store,
        ):
            if part is not None:
                await part.start()
                self._started.append(part)

    def _server_exit(self) -> None:
        """uvicorn starts shutting down: streams end now and their clients resume on another replica."""
        self.streams.end_all()
        self.listens.end_all()
        if self.endpoint is not None:
            self.endpoint.leave()

    async def stop(self) -> None:
        if self._remove_exit_hook is not None:
            self._remove_exit_hook()
        for part in reversed(self._started):
            try:
                await part.stop()
            except Exception:
                _log.exception("edge.stop.failed", part=type(part).__name__)
        self._started.clear()
        await self.http_runner.aclose()
        await self.source_runner.aclose()
