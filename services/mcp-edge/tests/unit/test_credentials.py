"""CredentialVerifier with a fake bus: caching, invalidation races, fail-closed, OAuth token placement."""

from __future__ import annotations

import asyncio
from typing import Any

from skillrelay_common.schemas.auth import InvalidateCredentials, TokenValid, VerifyToken
from skillrelay_common.schemas.base import Denied, Unavailable
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_common.settings import HttpSettings, Settings
from skillrelay_common.subjects import AUTH_TOKEN_VERIFY
from skillrelay_edge.access.credentials import AuthFailure, CredentialVerifier, Principal

SETTINGS = Settings(
    http=HttpSettings(edge_public_url="https://edge.example", auth_public_url="https://auth.example")
)
STATIC = IntegrationInfo(id="mcpserver_s", owner_id="u", name="s", skillset_id="k")
OAUTH = IntegrationInfo(id="mcpserver_o", owner_id="u", name="o", skillset_id="k", o_auth_connection_id="c")


class FakeNats:
    def __init__(self) -> None:
        self.is_connected = True
        self.stats = {"reconnects": 0}


class FakeBus:
    """Answers AUTH_TOKEN_VERIFY from ``valid`` (token → version); counts the requests."""

    def __init__(self) -> None:
        self.nc = FakeNats()
        self.instance_id = "edge-fake"
        self.valid: dict[str, int] = {"good": 1}
        self.verify_calls = 0
        self.gate: asyncio.Event | None = None
        self.reachable = True

    async def request(self, endpoint: Any, message: Any, *, timeout: float | None = None) -> Any:
        if endpoint is not AUTH_TOKEN_VERIFY:
            return Unavailable(message="not faked")
        assert isinstance(message, VerifyToken)
        self.verify_calls += 1
        answer: Any
        if message.token in self.valid:
            answer = TokenValid(integration_id=message.integration_id, version=self.valid[message.token])
        else:
            answer = Denied(reason="no")
        if self.gate is not None:
            gate, self.gate = self.gate, None
            await gate.wait()
        if not self.reachable:
            return Unavailable(message="down")
        return answer


def make() -> tuple[CredentialVerifier, FakeBus]:
    bus = FakeBus()
    verifier = CredentialVerifier(bus, SETTINGS)  # type: ignore[arg-type]
    verifier._last_round_trip = verifier._clock()  # started, without the heartbeat task
    verifier._seen_reconnects = 0
    return verifier, bus


async def test_positive_answers_are_cached_and_dropped_on_invalidation() -> None:
    verifier, bus = make()
    for _ in range(3):
        assert isinstance(await verifier.authenticate(STATIC, "Bearer good", None), Principal)
    assert bus.verify_calls == 1
    await verifier._on_invalidate(InvalidateCredentials(integration_id=STATIC.id))
    bus.valid = {"new": 2}
    refused = await verifier.authenticate(STATIC, "Bearer good", None)
    assert isinstance(refused, AuthFailure) and refused.status == 401
    # A static-token integration has no authorization server to discover: no resource_metadata.
    assert refused.www_authenticate == (
        'Bearer realm="https://edge.example/api/v1/integration/mcpserver/mcpserver_s/mcp", '
        'error="invalid_token", error_description="invalid static access token"'
    )
    principal = await verifier.authenticate(STATIC, None, "new")
    assert isinstance(principal, Principal) and principal.id == "static:v2"


async def test_an_answer_in_flight_during_an_invalidation_is_asked_again() -> None:
    verifier, bus = make()
    gate = bus.gate = asyncio.Event()
    pending = asyncio.create_task(verifier.authenticate(STATIC, "Bearer good", None))
    await asyncio.sleep(0)
    # The rotation lands while auth's (old) answer is on its way back.
    bus.valid = {"new": 2}
    await verifier._on_invalidate(InvalidateCredentials(integration_id=STATIC.id))
    gate.set()
    result = await pending
    assert isinstance(result, AuthFailure) and result.status == 401
    assert bus.verify_calls == 2


async def test_disconnect_and_reconnect_drop_the_cache_and_fail_closed() -> None:
    verifier, bus = make()
    assert isinstance(await verifier.authenticate(STATIC, "Bearer good", None), Principal)
    bus.nc.is_connected = False
    bus.reachable = False
    refused = await verifier.authenticate(STATIC, "Bearer good", None)
    assert isinstance(refused, AuthFailure) and refused.status == 503 and refused.www_authenticate is None
    bus.nc.is_connected = True
    bus.reachable = True
    bus.nc.stats["reconnects"] = 1
    calls = bus.verify_calls
    assert isinstance(await verifier.authenticate(STATIC, "Bearer good", None), Principal)
    assert bus.verify_calls == calls + 1  # resynchronised: asked auth again


async def test_stale_round_trip_means_no_cache() -> None:
    verifier, bus = make()
    assert isinstance(await verifier.authenticate(STATIC, "Bearer good", None), Principal)
    verifier._last_round_trip = verifier._clock() - 10
    assert isinstance(await verifier.authenticate(STATIC, "Bearer good", None), Principal)
    assert bus.verify_calls == 2


async def test_missing_credentials_get_a_plain_challenge() -> None:
    verifier, _ = make()
    refused = await verifier.authenticate(STATIC, None, None)
    assert isinstance(refused, AuthFailure) and refused.status == 401
    assert refused.www_authenticate is not None and "error=" not in refused.www_authenticate


async def test_oauth_integrations_need_the_static_token_in_the_query_and_a_jwt_in_the_header() -> None:
    verifier, _ = make()
    only_header = await verifier.authenticate(OAUTH, "Bearer good", None)
    assert isinstance(only_header, AuthFailure) and only_header.status == 401
    no_header = await verifier.authenticate(OAUTH, None, "good")
    assert isinstance(no_header, AuthFailure) and no_header.status == 401
    static_as_jwt = await verifier.authenticate(OAUTH, "Bearer good", "good")
    assert isinstance(static_as_jwt, AuthFailure) and static_as_jwt.status == 401
    assert static_as_jwt.reason == "malformed access token"


async def test_a_missing_token_is_named_and_only_oauth_integrations_point_to_resource_metadata() -> None:
    verifier, _ = make()
    static = await verifier.authenticate(STATIC, None, None)
    assert isinstance(static, AuthFailure) and static.status == 401
    assert static.reason.startswith("no access token")
    assert static.www_authenticate == (
        'Bearer realm="https://edge.example/api/v1/integration/mcpserver/mcpserver_s/mcp"'
    )
    gated = await verifier.authenticate(OAUTH, None, "good")
    assert isinstance(gated, AuthFailure) and gated.status == 401
    assert gated.www_authenticate == (
        'Bearer resource_metadata="https://edge.example/.well-known/oauth-protected-resource'
        '/api/v1/integration/mcpserver/mcpserver_o/mcp"'
    )
