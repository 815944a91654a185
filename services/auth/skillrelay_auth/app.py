"""Composition root of the auth service: static tokens, OAuth 2.1 authorization server."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import structlog
from litestar import Litestar
from litestar.config.cors import CORSConfig

from skillrelay_auth.bus_callout import WorkerCallout, serve_callout
from skillrelay_auth.bus_disconnect import SystemAccountDisconnector
from skillrelay_auth.client_documents import HttpClientDocuments
from skillrelay_auth.edge_link import (
    BusAccessRevoker,
    BusEdgeInvalidator,
    BusTokenEvents,
    listen_for_heartbeats,
)
from skillrelay_auth.handlers import SERVED_ENDPOINTS, register_jwks_handler, register_static_token_handlers
from skillrelay_auth.oauth.authorize import AuthorizationFlow
from skillrelay_auth.oauth.clients import ClientDirectory
from skillrelay_auth.oauth.parts import OAuthParts
from skillrelay_auth.oauth.policy import OAuthConfig
from skillrelay_auth.oauth.routes import oauth_routes
from skillrelay_auth.oauth.server import Issuers
from skillrelay_auth.oauth_repo import OAuthStore
from skillrelay_auth.presence import EdgePresence
from skillrelay_auth.registry_link import BusRegistryLookup
from skillrelay_auth.repo import SqlStaticTokenStore
from skillrelay_auth.safe_http import SafeHttp
from skillrelay_auth.signing import SigningKeys
from skillrelay_auth.static_tokens import StaticTokens
from skillrelay_auth.upstream import UpstreamIdP
from skillrelay_auth.worker_credential_handlers import (
    BusCredentialEvents,
    register_worker_credential_handlers,
)
from skillrelay_auth.worker_credentials import WorkerCredentials
from skillrelay_auth.worker_credentials_repo import SqlWorkerCredentialStore
from skillrelay_common import nkey
from skillrelay_common.audit import AuditRecorder, audit_stream
from skillrelay_common.crypto import SecretBox
from skillrelay_common.db import create_engine, migrate
from skillrelay_common.http import EXCEPTION_HANDLERS, health_handlers
from skillrelay_common.lifecycle import ServiceResources, Wire, Wiring
from skillrelay_common.logging import configure_logging
from skillrelay_common.metrics import metrics_middleware, metrics_routes
from skillrelay_common.request_log import request_log_middleware
from skillrelay_common.runtime import serve_http
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import AUTH_EVENTS, AUTH_PING
from skillrelay_common.tracing import configure_tracing, tracing_middleware

SERVICE = "auth"
_log = structlog.get_logger("skillrelay.auth")
MIGRATIONS = Path(__file__).parent / "migrations"


def service_resources(settings: Settings) -> ServiceResources:
    return ServiceResources(
        SERVICE,
        settings,
        schema="auth",
        migrations_dir=MIGRATIONS,
        streams=(AUTH_EVENTS,),
        serves=SERVED_ENDPOINTS,
    )


def oauth_config(settings: Settings) -> OAuthConfig:
    return OAuthConfig(
        auth_public_url=settings.http.auth_public_url,
        edge_public_url=settings.http.edge_public_url,
        registrations_per_minute=settings.oauth_registrations_per_minute,
    )


@dataclass
class AuthComponents:
    """What the running service is made of (built once NATS and the database are up)."""

    settings: Settings
    # Tests swap in a transport that serves client metadata documents without a real https host.
    http_transport: httpx.AsyncBaseTransport | None = None
    issuers: Issuers | None = None
    flow: AuthorizationFlow | None = None
    static_tokens: StaticTokens | None = None
    http: SafeHttp | None = field(default=None)
    audit: AuditRecorder | None = None
    worker_credentials: WorkerCredentials | None = None
    disconnector: SystemAccountDisconnector | None = None

    def current_issuers(self) -> Issuers:
        if self.issuers is None:
            raise RuntimeError("the auth service has not started")
        return self.issuers

    def current_flow(self) -> AuthorizationFlow:
        if self.flow is None:
            raise RuntimeError("the auth service has not started")
        return self.flow

    async def close(self) -> None:
        if self.audit is not None:
            await self.audit.stop()
        if self.http is not None:
            await self.http.close()
        if self.disconnector is not None:
            await self.disconnector.close()


def nats_wiring(resources: ServiceResources, components: AuthComponents) -> Wire:
    """The ``wire`` step of ``ServiceResources.start``: build the use cases, serve their subjects."""

    async def register(wiring: Wiring) -> None:
        bus = wiring.bus
        settings = components.settings
        engine = wiring.require_engine()
        secret_key = settings.secret_key or ""
        presence = EdgePresence()
        listen_for_heartbeats(wiring.consumers, presence)
        components.audit = AuditRecorder(bus, SERVICE, stream=audit_stream(settings))
        invalidator = BusEdgeInvalidator(bus, presence)
        config = oauth_config(settings)
        store = OAuthStore(engine)
        keys = SigningKeys(
            store, SecretBox(secret_key, "signing-key"), access_token_ttl=config.access_token_ttl
        )
        await keys.ensure_key()
        components.http = SafeHttp(
            allow_private=settings.allow_private_http_targets, transport=components.http_transport
        )
        clients = ClientDirectory(
            store, HttpClientDocuments(components.http), config.metadata_document_refresh
        )
        parts = OAuthParts(config, store, keys, clients, BusAccessRevoker(invalidator), components.audit)
        components.issuers = Issuers(parts, BusRegistryLookup(bus))
        components.flow = AuthorizationFlow(components.issuers, UpstreamIdP(components.http), secret_key)
        # The integration is deleted: its refresh tokens, codes and registered clients go too.
        tokens = StaticTokens(
            SqlStaticTokenStore(engine),
            invalidator,
            BusTokenEvents(bus),
            on_revoked=store.revoke_integration,
        )
        components.static_tokens = tokens
        wiring.answers.serve_ping(AUTH_PING)
        register_static_token_handlers(wiring.answers, tokens)
        register_jwks_handler(wiring.answers, keys)
        await serve_worker_identities(wiring, components)

    return register


async def serve_worker_identities(wiring: Wiring, components: AuthComponents) -> None:
    """Worker credentials, and the bus's auth callout that lets their workers in (docs/security.md)."""
    settings = components.settings
    bus = wiring.bus
    if settings.nats.system_url:
        components.disconnector = await SystemAccountDisconnector.connect(settings.nats.system_url)
    else:
        _log.warning("bus.no_system_account", effect="rotated worker credentials do not disconnect workers")
    credentials = WorkerCredentials(
        SqlWorkerCredentialStore(wiring.require_engine()), components.disconnector, BusCredentialEvents(bus)
    )
    components.worker_credentials = credentials
    register_worker_credential_handlers(wiring.answers, credentials)
    if settings.nats.callout_seed:
        serve_callout(
            wiring.consumers, WorkerCallout(credentials, nkey.KeyPair.from_seed(settings.nats.callout_seed))
        )
    else:
        _log.warning("bus.no_callout_key", effect="no worker can connect to NATS")


def create_app(settings: Settings, *, http_transport: httpx.AsyncBaseTransport | None = None) -> Litestar:
    resources = service_resources(settings)
    components = AuthComponents(settings, http_transport=http_transport)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await resources.start(nats_wiring(resources, components))
        if components.audit is not None:
            await components.audit.start()
        try:
            yield
        finally:
            await resources.stop()
            await components.close()

    return Litestar(
        route_handlers=[
            *health_handlers(resources.readiness),
            *oauth_routes(oauth_config(settings), components.current_issuers, components.current_flow),
            *metrics_routes(),
        ],
        middleware=[request_log_middleware, metrics_middleware, tracing_middleware],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        logging_config=None,  # configure_logging owns logging: Litestar's default would reset it to INFO
        # MCP clients in browsers read metadata and call register/token/revoke cross-origin; no cookies.
        cors_config=CORSConfig(allow_origins=["*"], allow_credentials=False, allow_methods=["GET", "POST"]),
    )


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json, service=SERVICE)
    configure_tracing(SERVICE, settings)
    if sys.argv[1:] == ["rotate-signing-key"]:
        kid = asyncio.run(rotate_signing_key(settings))
        print(f"new signing key {kid}; the previous one stays published until its tokens expire")
        return
    serve_http(
        create_app(settings),
        settings.http.host,
        settings.http.auth_port,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


async def rotate_signing_key(settings: Settings) -> str:
    """``python -m skillrelay_auth rotate-signing-key``: a new active key; live tokens keep verifying."""
    engine = create_engine(settings.database)
    try:
        await migrate(engine, "auth", MIGRATIONS)
        keys = SigningKeys(
            OAuthStore(engine),
            SecretBox(settings.secret_key or "", "signing-key"),
            access_token_ttl=oauth_config(settings).access_token_ttl,
        )
        return await keys.rotate()
    finally:
        await engine.dispose()
