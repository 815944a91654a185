"""The registry app over the real PostgreSQL and NATS of the test session.

Auth and sessions are stood in for by small fakes that answer their NATS subjects on the same real
NATS (``FakeTokenAuthority``, ``FakeSessionStore``); the whole-stack test in ``tests/e2e`` uses the real
services instead.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import msgspec
import pytest
from litestar import Litestar
from nats.aio.msg import Msg

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.auth import IssueToken, RevokeToken, RotateToken, TokenIssued
from skillrelay_common.schemas.base import NotFound, Ok
from skillrelay_common.schemas.sessions import (
    CloseSession,
    CloseSessions,
    GetSession,
    ListSessions,
    SessionInfo,
    SessionList,
    SessionPosition,
    SessionsClosed,
)
from skillrelay_common.settings import DatabaseSettings, HttpSettings, NatsSettings, Settings
from skillrelay_common.subjects import (
    AUTH_TOKEN_ISSUE,
    AUTH_TOKEN_REVOKE,
    AUTH_TOKEN_ROTATE,
    SESSIONS_CLOSE,
    SESSIONS_CLOSE_ALL,
    SESSIONS_GET,
    SESSIONS_LIST,
    Endpoint,
)
from skillrelay_registry.app import create_app

ADMIN_TOKEN = "admin-token-for-tests"
EDGE_URL = "http://edge.example.test"


Handlers = list[tuple[Endpoint[Any, Any], Callable[[Any], Awaitable[Any]]]]


class FakeService:
    """A service stood in for on the real NATS: answers ``handlers()`` from ``start()`` until ``stop()``
    (which takes it off NATS: the registry then sees ``Unavailable``, the service is down)."""

    service = ""

    def __init__(self) -> None:
        self.bus: Bus | None = None

    def handlers(self) -> Handlers:
        raise NotImplementedError

    async def start(self, nats_url: str) -> None:
        self.bus = await Bus.connect(nats_url, self.service, request_timeout=1.0)
        for endpoint, handler in self.handlers():
            self.bus.serve(endpoint, handler)
        await self.bus.start()

    async def stop(self) -> None:
        if self.bus is not None:
            await self.bus.close()


F = TypeVar("F", bound=FakeService)


@asynccontextmanager
async def serving(fake: F, nats_url: str) -> AsyncIterator[F]:
    await fake.start(nats_url)
    try:
        yield fake
    finally:
        await fake.stop()


class FakeTokenAuthority(FakeService):
    """Answers ``auth.token.{issue,rotate,revoke}`` like the auth service would, keeping tokens in
    memory."""

    service = "auth"

    def __init__(self) -> None:
        super().__init__()
        self.tokens: dict[str, tuple[str, int]] = {}
        self.revoked: list[str] = []

    def handlers(self) -> Handlers:
        return [
            (AUTH_TOKEN_ISSUE, self._issue),
            (AUTH_TOKEN_ROTATE, self._rotate),
            (AUTH_TOKEN_REVOKE, self._revoke),
        ]

    async def _issue(self, request: IssueToken) -> TokenIssued:
        token = f"sr_mcp_{secrets.token_urlsafe(32)}"
        self.tokens[request.integration_id] = (token, 1)
        return TokenIssued(integration_id=request.integration_id, token=token, version=1)

    async def _rotate(self, request: RotateToken) -> TokenIssued | NotFound:
        if request.integration_id not in self.tokens:
            return NotFound(what="token")
        version = self.tokens[request.integration_id][1] + 1
        token = f"sr_mcp_{secrets.token_urlsafe(32)}"
        self.tokens[request.integration_id] = (token, version)
        return TokenIssued(integration_id=request.integration_id, token=token, version=version)

    async def _revoke(self, request: RevokeToken) -> Ok | NotFound:
        self.revoked.append(request.integration_id)
        return Ok() if self.tokens.pop(request.integration_id, None) else NotFound(what="token")


class FakeSessionStore(FakeService):
    """Answers the ``sessions.session.*`` subjects the registry uses, from memory."""

    service = "sessions"

    def __init__(self) -> None:
        super().__init__()
        self.sessions: dict[str, SessionInfo] = {}
        self.closed_all: list[str] = []

    def add(self, integration_id: str) -> SessionInfo:
        now = time.time()
        info = SessionInfo(
            session_id=secrets.token_urlsafe(16),
            integration_id=integration_id,
            principal="static:v1",
            created_at=now,
            last_seen_at=now,
            expires_at=now + 86400,
            protocol_version="2025-11-25",
        )
        self.sessions[info.session_id] = info
        return info

    def handlers(self) -> Handlers:
        return [
            (SESSIONS_LIST, self._list),
            (SESSIONS_GET, self._get),
            (SESSIONS_CLOSE, self._close),
            (SESSIONS_CLOSE_ALL, self._close_all),
        ]

    async def _list(self, request: ListSessions) -> SessionList:
        """Pages like the real service: by (created_at, id), ``next`` when more follow."""
        mine = sorted(
            (s for s in self.sessions.values() if s.integration_id == request.integration_id),
            key=lambda s: (s.created_at, s.session_id),
            reverse=request.order == "desc",
        )
        if request.after is not None:
            mark = (request.after.created_at, request.after.session_id)
            mine = [
                s
                for s in mine
                if (
                    (s.created_at, s.session_id) < mark
                    if request.order == "desc"
                    else (s.created_at, s.session_id) > mark
                )
            ]
        page = mine[: request.take]
        more = len(mine) > request.take
        last = page[-1] if page else None
        return SessionList(
            sessions=page,
            next=SessionPosition(created_at=last.created_at, session_id=last.session_id)
            if more and last
            else None,
        )

    async def _get(self, request: GetSession) -> SessionInfo | NotFound:
        return self.sessions.get(request.session_id) or NotFound(what="session")

    async def _close(self, request: CloseSession) -> Ok | NotFound:
        return Ok() if self.sessions.pop(request.session_id, None) else NotFound(what="session")

    async def _close_all(self, request: CloseSessions) -> SessionsClosed:
        self.closed_all.append(request.integration_id)
        ended = [k for k, s in self.sessions.items() if s.integration_id == request.integration_id]
        for key in ended:
            del self.sessions[key]
        return SessionsClosed(count=len(ended))


@dataclass
class EventTap:
    """Every ``events.registry.>`` message published while the test runs, decoded as JSON."""

    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_message(self, msg: Msg) -> None:
        self.received.append((msg.subject, msgspec.json.decode(msg.data)))
        self.arrived.set()

    async def wait_for(
        self, subject: str, match: Callable[[dict[str, Any]], bool] = lambda _: True, timeout: float = 5.0
    ) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                for got_subject, payload in self.received:
                    if got_subject == subject and match(payload):
                        return payload
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(find(), timeout)


def registry_settings(nats_url: str, database_url: str) -> Settings:
    return Settings(
        nats=NatsSettings(url=nats_url, request_timeout=1.0),
        database=DatabaseSettings(url=database_url, pool_size=5),
        http=HttpSettings(edge_public_url=EDGE_URL),
        admin_token=ADMIN_TOKEN,
        secret_key="test-secret-key-0123456789abcdef",
        max_body_bytes=256 * 1024,
    )


@pytest.fixture
async def token_authority(nats_url: str) -> AsyncIterator[FakeTokenAuthority]:
    async with serving(FakeTokenAuthority(), nats_url) as authority:
        yield authority


@pytest.fixture
async def session_store(nats_url: str) -> AsyncIterator[FakeSessionStore]:
    async with serving(FakeSessionStore(), nats_url) as store:
        yield store


@pytest.fixture
async def events(bus: Bus) -> AsyncIterator[EventTap]:
    tap = EventTap()
    subscription = await bus.nc.subscribe("events.registry.>", cb=tap.on_message)
    await bus.nc.flush()
    yield tap
    await subscription.unsubscribe()


@pytest.fixture
async def client(
    nats_url: str, database_url: str, token_authority: FakeTokenAuthority, session_store: FakeSessionStore
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, its lifespan run in the test's own event loop (Litestar's test clients run it in a
    portal thread, which would put the NATS connection and the DB pool on another loop)."""
    app = create_app(registry_settings(nats_url, database_url))
    async with (
        running(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test") as http,
    ):
        yield http


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[None]:
    """Run the app's lifespan in a task of its own (its cancel scope must be left by the task that
    entered it, and pytest-asyncio sets fixtures up and tears them down in different tasks)."""
    started = asyncio.Event()
    stopping = asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stopping.wait()

    task = asyncio.create_task(lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()  # startup failed: raise its error here
    assert started.is_set(), "the registry app did not start"
    try:
        yield
    finally:
        stopping.set()
        await task


NewOwner = Callable[[str], Coroutine[Any, Any, dict[str, str]]]


@pytest.fixture
def new_owner(client: httpx.AsyncClient) -> NewOwner:
    """Creates a user through the admin call; returns the headers that authenticate as it."""

    async def create(name: str = "owner") -> dict[str, str]:
        response = await client.post(
            "/api/v1/user/create", json={"name": name}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['apiKey']}"}

    return create
