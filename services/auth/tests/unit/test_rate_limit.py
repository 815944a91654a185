"""Open client registration is rate-limited per client address."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from skillrelay_auth.oauth.framework import Answer
from skillrelay_auth.oauth.policy import OAuthConfig
from skillrelay_auth.oauth.routes import oauth_routes
from skillrelay_auth.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_buckets_refill_at_the_rate_and_are_per_key() -> None:
    clock = Clock()
    limiter = RateLimiter(6, burst=2, clock=clock)  # one token every 10 s
    assert limiter.acquire("a") is None and limiter.acquire("a") is None
    wait = limiter.acquire("a")
    assert wait is not None and 9.9 < wait <= 10.0
    assert limiter.acquire("b") is None  # another address has its own bucket
    clock.now = 10.0
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") is not None


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(60, max_keys=3)
    for key in "abcdef":
        limiter.acquire(key)
    assert len(limiter._buckets) == 3


class FakeServer:
    """Stands in for Authlib's server behind the route: counts the registrations that reach it."""

    issuer = "http://auth.test/oauth/mcpserver_x"

    def __init__(self) -> None:
        self.registered = 0

    def create_endpoint_response(self, name: str, request: Any) -> Answer:
        self.registered += 1
        return Answer(201, {"client_id": f"c{self.registered}"})


class FakeIssuers:
    def __init__(self, server: FakeServer) -> None:
        self._server = server

    async def server(self, integration_id: str) -> FakeServer:
        return self._server


async def test_register_answers_429_with_retry_after_past_the_limit() -> None:
    server = FakeServer()
    config = OAuthConfig(
        auth_public_url="http://auth.test", edge_public_url="http://edge.test", registrations_per_minute=2
    )
    routes = oauth_routes(config, lambda: FakeIssuers(server), lambda: None)  # type: ignore[arg-type,return-value]
    app = Litestar(route_handlers=routes)
    async with AsyncTestClient(app) as client:
        body = {"redirect_uris": ["http://127.0.0.1/cb"]}
        answers = [await client.post("/oauth/mcpserver_x/register", json=body) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [201, 201, 429]
    assert answers[2].json()["error"] == "too_many_requests"
    assert int(answers[2].headers["retry-after"]) >= 1
    assert server.registered == 2
