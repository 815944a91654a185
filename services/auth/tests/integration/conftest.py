"""A whole OAuth topology for tests, on free ports, in one background thread with its own event loop:

- an upstream OpenID Connect provider (the owner's IdP; logs users in headlessly),
- a stand-in registry answering ``REGISTRY_INTEGRATION_RESOLVE`` / ``REGISTRY_OAUTH_CONNECTION_GET``,
- the real auth service (HTTP + NATS + its own database),
- the real edge (MCP endpoint + protected-resource metadata) with in-process sessions.

``oidc-provider-mock`` needs Python >= 3.12 and this toolchain is 3.11, so the IdP is a small OIDC
provider written here: discovery, authorize (code + PKCE S256), token (client_secret_basic/post),
userinfo and JWKS, with RS256 ID tokens.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import asyncpg
import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from litestar import Litestar, Request, Response, get, post
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from skillrelay_auth.app import create_app as create_auth_app
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.auth import IssueToken, TokenIssued
from skillrelay_common.schemas.base import NotFound
from skillrelay_common.schemas.registry import (
    GetOAuthConnection,
    IntegrationInfo,
    IntegrationSnapshot,
    OAuthConnectionSecret,
    ResolveIntegration,
)
from skillrelay_common.settings import DatabaseSettings, HttpSettings, NatsSettings, Settings
from skillrelay_common.subjects import (
    AUTH_TOKEN_ISSUE,
    REGISTRY_INTEGRATION_RESOLVE,
    REGISTRY_OAUTH_CONNECTION_GET,
)
from skillrelay_devstack.edge import demo_skillset
from skillrelay_devstack.embedded import free_port
from skillrelay_edge.app import create_app as create_edge_app

IDP_CLIENT_ID = "skillrelay-at-idp"
IDP_CLIENT_SECRET = "idp-secret-" + "x" * 20
CLIENT_DOCUMENT_URL = "https://client.example/oauth/client.json"
REDIRECT_URI = "http://127.0.0.1:1/callback"  # where the SDK client says it listens (never reached)


# --- the upstream identity provider -----------------------------------------------------------


@dataclass
class IdentityProvider:
    url: str
    user: dict[str, str] = field(default_factory=lambda: {"sub": "alice", "email": "alice@example.com"})
    redirect_uris: set[str] = field(default_factory=set)
    _codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    logins: int = 0

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = "idp-key-1"

    def app(self) -> Litestar:
        idp = self

        @get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": idp.url,
                "authorization_endpoint": f"{idp.url}/authorize",
                "token_endpoint": f"{idp.url}/token",
                "userinfo_endpoint": f"{idp.url}/userinfo",
                "jwks_uri": f"{idp.url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
            }

        @get("/jwks")
        async def jwks() -> dict[str, Any]:
            public = RSAAlgorithm.to_jwk(idp._key.public_key(), as_dict=True)
            return {"keys": [{**public, "kid": idp._kid, "alg": "RS256", "use": "sig"}]}

        @get("/authorize")
        async def authorize(request: Request[Any, Any, Any]) -> Response[Any]:
            q = dict(request.query_params)
            if q.get("client_id") != IDP_CLIENT_ID or q.get("redirect_uri") not in idp.redirect_uris:
                return Response({"error": "invalid_client"}, status_code=400)
            if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                return Response({"error": "invalid_request"}, status_code=400)
            code = secrets.token_urlsafe(16)
            idp._codes[code] = {**q, "user": dict(idp.user)}
            idp.logins += 1
            target = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}"
            return Response(b"", status_code=302, headers={"Location": target})

        @post("/token", status_code=200)
        async def token(request: Request[Any, Any, Any]) -> Response[Any]:
            form = dict(await request.form())
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            else:
                client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
            if client_id != IDP_CLIENT_ID or secret != IDP_CLIENT_SECRET:
                return Response({"error": "invalid_client"}, status_code=401)
            grant = idp._codes.pop(form.get("code", ""), None)
            if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                return Response({"error": "invalid_grant"}, status_code=400)
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).decode().rstrip("=") != grant["code_challenge"]:
                return Response({"error": "invalid_grant"}, status_code=400)
            now = int(time.time())
            user = grant["user"]
            id_token = jwt.encode(
                {
                    "iss": idp.url,
                    "aud": IDP_CLIENT_ID,
                    "sub": user["sub"],
                    "email": user.get("email"),
                    "nonce": grant.get("nonce"),
                    "iat": now,
                    "exp": now + 300,
                },
                idp._key,
                algorithm="RS256",
                headers={"kid": idp._kid},
            )
            access = secrets.token_urlsafe(16)
            idp._tokens[access] = user
            return Response({"access_token": access, "token_type": "Bearer", "id_token": id_token})

        @get("/userinfo")
        async def userinfo(request: Request[Any, Any, Any]) -> Response[Any]:
            user = idp._tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
            if user is None:
                return Response({"error": "invalid_token"}, status_code=401)
            return Response({**user, "name": user["sub"].title()})

        return Litestar([discovery, jwks, authorize, token, userinfo])


# --- the stand-in registry --------------------------------------------------------------------


@dataclass
class Registry:
    integrations: dict[str, IntegrationInfo] = field(default_factory=dict)
    connection: OAuthConnectionSecret | None = None

    async def resolve(self, request: ResolveIntegration) -> IntegrationSnapshot | NotFound:
        info = self.integrations.get(request.integration_id)
        if info is None:
            return NotFound(what="integration")
        return IntegrationSnapshot(integration=info, skillset=demo_skillset(info.skillset_id))

    async def get_connection(self, request: GetOAuthConnection) -> OAuthConnectionSecret | NotFound:
        if self.connection is None or request.connection_id != self.connection.id:
            return NotFound(what="oauthconnection")
        return self.connection


class DocumentTransport(httpx.AsyncBaseTransport):
    """Serves client ID metadata documents for made-up https hosts; everything else goes out for real."""

    def __init__(self, documents: dict[str, dict[str, Any]]) -> None:
        self.documents = documents
        self.fetches = 0
        self._real = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        document = self.documents.get(str(request.url))
        if document is not None:
            self.fetches += 1
            return httpx.Response(200, json=document)
        return await self._real.handle_async_request(request)


# --- the topology -----------------------------------------------------------------------------


@dataclass
class OAuthStack:
    auth_url: str
    edge_url: str
    idp: IdentityProvider
    registry: Registry
    documents: DocumentTransport
    nats_url: str
    settings: Settings

    def issuer(self, integration_id: str) -> str:
        return f"{self.auth_url}/oauth/{integration_id}"

    def mcp_url(self, integration_id: str) -> str:
        return f"{self.edge_url}/api/v1/integration/mcpserver/{integration_id}/mcp"

    def add_integration(self, *, oauth: bool = True) -> IntegrationInfo:
        info = IntegrationInfo(
            id=f"mcpserver_{uuid.uuid4().hex[:12]}",
            owner_id="user_owner",
            name="Demo server",
            skillset_id="skillset_demo",
            o_auth_connection_id="oauthconnection_1" if oauth else None,
        )
        self.registry.integrations[info.id] = info
        return info


class _Servers:
    def __init__(self, apps: list[tuple[Any, int]], registry: Registry, nats_url: str) -> None:
        self._apps = apps
        self._registry = registry
        self._nats_url = nats_url
        self._servers: list[uvicorn.Server] = []
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._failed: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not (len(self._servers) == len(self._apps) and all(s.started for s in self._servers)):
            if self._failed is not None or not self._thread.is_alive():
                raise RuntimeError(f"OAuth test topology did not start: {self._failed!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("OAuth test topology did not start in time")
            time.sleep(0.05)

    async def _main(self) -> None:
        try:
            bus = await Bus.connect(self._nats_url, "registry", instance_id="registry-standin")
            bus.serve(REGISTRY_INTEGRATION_RESOLVE, self._registry.resolve)
            bus.serve(REGISTRY_OAUTH_CONNECTION_GET, self._registry.get_connection)
            await bus.start()
            for app, port in self._apps:
                config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
                self._servers.append(uvicorn.Server(config))
            # The edge needs auth's JWKS at start, so auth starts first.
            tasks = []
            for server in self._servers:
                tasks.append(asyncio.create_task(server.serve()))
                while not server.started:
                    if tasks[-1].done():
                        tasks[-1].result()
                    await asyncio.sleep(0.02)
            await asyncio.gather(*tasks)
            await bus.close()
        except BaseException as exc:
            self._failed = exc
            raise

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        self._thread.join(30)


@pytest.fixture(scope="module")
def oauth_stack(nats_url: str, postgres_admin_url: str) -> Iterator[OAuthStack]:
    name = f"t_{uuid.uuid4().hex[:16]}"

    async def create_db() -> None:
        conn = await asyncpg.connect(postgres_admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop_db() -> None:
        conn = await asyncpg.connect(postgres_admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create_db())
    database_url = f"{postgres_admin_url.rpartition('/')[0]}/{name}"
    auth_port, edge_port, idp_port = free_port(), free_port(), free_port()
    http = HttpSettings(
        auth_port=auth_port,
        edge_port=edge_port,
        auth_public_url=f"http://127.0.0.1:{auth_port}",
        edge_public_url=f"http://127.0.0.1:{edge_port}",
    )
    settings = Settings(
        nats=NatsSettings(url=nats_url),
        database=DatabaseSettings(url=database_url, pool_size=4),
        http=http,
        secret_key="test-secret-key-" + "k" * 16,
        allow_private_http_targets=True,  # the IdP runs on 127.0.0.1
        # Every test of the module registers clients from 127.0.0.1: on a quiet machine they outrun
        # the production default of 20 a minute. The limit itself is tested in unit/test_rate_limit.py.
        oauth_registrations_per_minute=6000,
    )
    idp = IdentityProvider(url=f"http://127.0.0.1:{idp_port}")
    idp.redirect_uris.add(f"{http.auth_public_url}/oauth/callback")
    registry = Registry(
        connection=OAuthConnectionSecret(
            id="oauthconnection_1",
            owner_id="user_owner",
            name="Test IdP",
            client_id=IDP_CLIENT_ID,
            client_secret=IDP_CLIENT_SECRET,
            scopes=["openid", "email"],
            issuer=idp.url,
        )
    )
    documents = DocumentTransport({})
    servers = _Servers(
        [
            (idp.app(), idp_port),
            (create_auth_app(settings, http_transport=documents), auth_port),
            (create_edge_app(settings, local_sessions=True), edge_port),
        ],
        registry,
        nats_url,
    )
    servers.start()
    try:
        yield OAuthStack(
            http.auth_public_url, http.edge_public_url, idp, registry, documents, nats_url, settings
        )
    finally:
        servers.stop()
        asyncio.run(drop_db())


# --- a headless browser -----------------------------------------------------------------------


@dataclass
class LoginResult:
    status: int
    location: str | None
    params: dict[str, str]
    consent_shown: bool
    consent_headers: dict[str, str] = field(default_factory=dict)


async def browse_authorization(
    browser: httpx.AsyncClient, authorize_url: str, idp_url: str, *, allow: bool = True
) -> LoginResult:
    """Follow an authorization URL like a user would: to the IdP (auto-login), back, consent, and stop
    at the redirect to the client. ``browser`` keeps cookies between steps."""
    response = await browser.get(authorize_url)
    if response.status_code != 302:
        return LoginResult(response.status_code, None, {}, False)
    location = response.headers["Location"]
    if not location.startswith(idp_url + "/"):
        return LoginResult(302, location, _query(location), False)  # an error sent back to the client
    idp_answer = await browser.get(location)
    assert idp_answer.status_code == 302, idp_answer.text
    response = await browser.get(idp_answer.headers["Location"])
    consent_shown = False
    headers: dict[str, str] = {}
    if response.status_code == 200 and "Allow access" in response.text:
        consent_shown = True
        headers = dict(response.headers)
        request_id = re.search(r'name="request_id" value="([^"]+)"', response.text)
        csrf = re.search(r'name="csrf" value="([^"]+)"', response.text)
        assert request_id and csrf
        auth_origin = "{0.scheme}://{0.netloc}".format(urlsplit(str(response.url)))
        response = await browser.post(
            f"{auth_origin}/oauth/consent",
            data={
                "request_id": request_id.group(1),
                "csrf": csrf.group(1),
                "decision": "allow" if allow else "deny",
            },
        )
    if response.status_code not in (302, 303):
        return LoginResult(response.status_code, None, {}, consent_shown, headers)
    location = response.headers["Location"]
    return LoginResult(response.status_code, location, _query(location), consent_shown, headers)


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class AppThread:
    """One ASGI app served by uvicorn on a free port in a background thread."""

    def __init__(self, app: Any, port: int) -> None:
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> AppThread:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("app did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)


# --- the MCP SDK client's collaborators ---------------------------------------------------------


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class HeadlessUser:
    """The SDK's redirect and callback handlers, played by a cookie-keeping HTTP client."""

    def __init__(self, idp_url: str) -> None:
        self.idp_url = idp_url
        self.browser = httpx.AsyncClient(timeout=10)
        self.results: list[LoginResult] = []

    async def redirect(self, url: str) -> None:
        self.results.append(await browse_authorization(self.browser, url, self.idp_url))

    async def callback(self) -> AuthorizationCodeResult:
        params = self.results[-1].params
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))


def sdk_provider(
    server_url: str,
    user: HeadlessUser,
    storage: MemoryStorage,
    client_metadata_url: str | None = None,
    **metadata: Any,
) -> OAuthClientProvider:
    """The SDK's OAuth client for ``server_url``, logging in as ``user`` (authorization code + refresh,
    redirected to ``REDIRECT_URI``; ``metadata``: more of its client metadata)."""
    return OAuthClientProvider(
        server_url,
        OAuthClientMetadata(
            redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
            grant_types=["authorization_code", "refresh_token"],
            **metadata,
        ),
        storage,
        redirect_handler=user.redirect,
        callback_handler=user.callback,
        client_metadata_url=client_metadata_url,
    )


@asynccontextmanager
async def sdk_client(server_url: str, provider: OAuthClientProvider) -> AsyncIterator[Client]:
    """An MCP SDK client session with ``server_url`` that authenticates through ``provider``."""
    async with (
        create_mcp_http_client(auth=provider) as http,
        Client(streamable_http_client(server_url, http_client=http)) as client,
    ):
        yield client


async def static_token(bus: Bus, integration_id: str) -> str:
    issued = await bus.request(AUTH_TOKEN_ISSUE, IssueToken(integration_id=integration_id))
    assert isinstance(issued, TokenIssued)
    return issued.token


async def ping(http: httpx.AsyncClient, url: str, access_token: str, request_id: int = 1) -> httpx.Response:
    """An MCP ``ping`` to ``url`` with ``access_token`` as the bearer (2025-11-25)."""
    return await http.post(
        url,
        headers={
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": "2025-11-25",
        },
        json={"jsonrpc": "2.0", "id": request_id, "method": "ping"},
    )
