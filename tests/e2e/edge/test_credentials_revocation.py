"""The revocation contract over real NATS and PostgreSQL: two edge replicas (two CredentialVerifiers on
their own connections) under concurrent load; once the rotate reply has arrived, not one request with
the old token succeeds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from skillrelay_common.lifecycle import ServiceResources
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.auth import IssueToken, RevokeToken, RotateToken, TokenIssued
from skillrelay_common.schemas.base import Ok
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_common.settings import NatsSettings, Settings
from skillrelay_common.subjects import AUTH_TOKEN_ISSUE, AUTH_TOKEN_REVOKE, AUTH_TOKEN_ROTATE
from skillrelay_edge.access.credentials import AuthFailure, CredentialVerifier, Principal

INTEGRATION = IntegrationInfo(id="mcpserver_revoke1", owner_id="user_1", name="r", skillset_id="skillset_1")


@dataclass
class Replica:
    bus: Bus
    verifier: CredentialVerifier


async def start_replica(nats_url: str, name: str) -> Replica:
    settings = Settings(nats=NatsSettings(url=nats_url), secret_key="k" * 32)
    bus = await Bus.connect(nats_url, "edge", instance_id=name)
    verifier = CredentialVerifier(bus, settings)
    verifier.register(bus)
    await bus.start()
    await verifier.start()
    return Replica(bus, verifier)


@pytest.fixture
async def replicas(nats_url: str, auth_service: ServiceResources) -> AsyncIterator[list[Replica]]:
    started = [await start_replica(nats_url, f"edge-test-{i}") for i in (1, 2)]
    yield started
    for replica in started:
        await replica.verifier.stop()
        await replica.bus.close()


async def test_no_replica_accepts_the_old_token_once_rotate_returned(
    bus: Bus, replicas: list[Replica]
) -> None:
    issued = await bus.request(AUTH_TOKEN_ISSUE, IssueToken(integration_id=INTEGRATION.id))
    assert isinstance(issued, TokenIssued)
    current = {"token": issued.token}
    # (replica, token used, finished at, accepted)
    outcomes: list[tuple[int, str, float, bool]] = []
    stop = asyncio.Event()

    async def load(index: int, replica: Replica, use_old: bool) -> None:
        old = issued.token
        while not stop.is_set():
            token = old if use_old else current["token"]
            result = await replica.verifier.authenticate(INTEGRATION, f"Bearer {token}", None)
            outcomes.append((index, token, time.monotonic(), isinstance(result, Principal)))
            await asyncio.sleep(0)

    workers = [
        asyncio.create_task(load(i, replica, use_old=(w % 2 == 0)))
        for i, replica in enumerate(replicas)
        for w in range(4)
    ]
    rotations: list[tuple[str, float]] = []
    try:
        await asyncio.sleep(0.3)  # load running: both caches are warm with the old token
        old_token = issued.token
        assert any(ok for _, token, _, ok in outcomes if token == old_token)
        for _ in range(3):
            previous = current["token"]
            reply = await asyncio.wait_for(
                bus.request(AUTH_TOKEN_ROTATE, RotateToken(integration_id=INTEGRATION.id)), 10
            )
            returned_at = time.monotonic()
            assert isinstance(reply, TokenIssued)
            current["token"] = reply.token
            rotations.append((previous, returned_at))
            await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.gather(*workers)

    for retired_token, returned_at in rotations:
        late = [o for o in outcomes if o[1] == retired_token and o[2] > returned_at and o[3]]
        assert late == [], f"{len(late)} requests accepted a rotated token after rotate returned"
    # The load really ran after each rotation, on both replicas, and the newest token works.
    for retired_token, returned_at in rotations:
        assert {o[0] for o in outcomes if o[1] == retired_token and o[2] > returned_at} == {0, 1}
    final = await replicas[1].verifier.authenticate(INTEGRATION, None, current["token"])
    assert isinstance(final, Principal) and final.id == "static:v4" and final.token_version == 4


async def test_revoke_ends_the_token_on_every_replica(bus: Bus, replicas: list[Replica]) -> None:
    issued = await bus.request(AUTH_TOKEN_ISSUE, IssueToken(integration_id="mcpserver_revoke2"))
    assert isinstance(issued, TokenIssued)
    integration = IntegrationInfo(id="mcpserver_revoke2", owner_id="u", name="r", skillset_id="s")
    for replica in replicas:
        assert isinstance(await replica.verifier.authenticate(integration, None, issued.token), Principal)
    assert isinstance(await bus.request(AUTH_TOKEN_REVOKE, RevokeToken(integration_id=integration.id)), Ok)
    for replica in replicas:
        refused = await replica.verifier.authenticate(integration, f"Bearer {issued.token}", None)
        assert isinstance(refused, AuthFailure) and refused.status == 401
        assert refused.www_authenticate is not None
        assert 'error="invalid_token"' in refused.www_authenticate
        assert "resource_metadata=" not in refused.www_authenticate  # no OAuth connection


async def test_a_replica_without_nats_fails_closed(bus: Bus, replicas: list[Replica]) -> None:
    issued = await bus.request(AUTH_TOKEN_ISSUE, IssueToken(integration_id="mcpserver_revoke3"))
    assert isinstance(issued, TokenIssued)
    integration = IntegrationInfo(id="mcpserver_revoke3", owner_id="u", name="r", skillset_id="s")
    replica = replicas[0]
    assert isinstance(await replica.verifier.authenticate(integration, None, issued.token), Principal)
    await replica.bus.nc.close()  # the cache is warm, but the replica can no longer hear revocations
    refused = await replica.verifier.authenticate(integration, None, issued.token)
    assert isinstance(refused, AuthFailure) and refused.status == 503
