"""How long a static-token rotation takes to return, with edge replicas under load, and whether any
replica accepted the old token after it returned.

``.tools/bin/uv run --frozen --no-sync python -m benchmarks.rotate_latency [--rotations 200] [--replicas 2]``

Starts an embedded nats-server and PostgreSQL (or uses ``SKILLRELAY_NATS_URL`` /
``SKILLRELAY_DATABASE_URL``), the auth service's NATS side in this process, and ``--replicas`` edge
credential verifiers on their own NATS connections, each with concurrent workers authenticating in a loop
(half with the token being rotated away). Each rotation is timed from sending ``AUTH_TOKEN_ROTATE`` to its
reply, which auth sends only after every live replica acknowledged the invalidation. A second phase adds a
replica that heartbeats but never acknowledges (stalled), to show the bounded wait.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from benchmarks.harness import infrastructure, percentile
from skillrelay_auth.app import AuthComponents, nats_wiring, service_resources
from skillrelay_common.messaging import Bus, encode
from skillrelay_common.schemas.auth import EdgeHeartbeat, IssueToken, RotateToken, TokenIssued
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_common.settings import DatabaseSettings, NatsSettings, Settings
from skillrelay_common.subjects import AUTH_TOKEN_ISSUE, AUTH_TOKEN_ROTATE, EDGE_HEARTBEAT_SUBJECT
from skillrelay_edge.access.credentials import CredentialVerifier, Principal

INTEGRATION = IntegrationInfo(
    id="mcpserver_rotatebench", owner_id="user_b", name="b", skillset_id="skillset_b"
)


async def run(nats_url: str, database_url: str, rotations: int, replicas: int, workers: int) -> None:
    settings = Settings(
        nats=NatsSettings(url=nats_url),
        database=DatabaseSettings(url=database_url),
        secret_key="bench-" + "k" * 26,
    )
    auth = service_resources(settings)
    await auth.start(nats_wiring(auth, AuthComponents(settings)))
    client = await Bus.connect(nats_url, "bench")
    edges: list[tuple[Bus, CredentialVerifier]] = []
    for index in range(replicas):
        bus = await Bus.connect(nats_url, "edge", instance_id=f"edge-bench-{index}")
        verifier = CredentialVerifier(bus, settings)
        verifier.register(bus)
        await bus.start()
        await verifier.start()
        edges.append((bus, verifier))
    issued = await client.request(AUTH_TOKEN_ISSUE, IssueToken(integration_id=INTEGRATION.id))
    assert isinstance(issued, TokenIssued)
    current = {"token": issued.token}
    accepted: dict[str, list[float]] = {}  # token -> when each request with it was accepted
    requests = 0
    stop = asyncio.Event()

    async def load(verifier: CredentialVerifier, use_previous: bool) -> None:
        nonlocal requests
        previous = current["token"]
        while not stop.is_set():
            token = previous if use_previous else current["token"]
            result = await verifier.authenticate(INTEGRATION, f"Bearer {token}", None)
            requests += 1
            if isinstance(result, Principal):
                accepted.setdefault(token, []).append(time.monotonic())
            if not use_previous:
                previous = token
            await asyncio.sleep(0)

    tasks = [
        asyncio.create_task(load(verifier, use_previous=(w % 2 == 0)))
        for _, verifier in edges
        for w in range(workers)
    ]
    await asyncio.sleep(1.5)  # auth learns the replicas from their heartbeats
    latencies: list[float] = []
    retired: list[tuple[str, float]] = []
    started = time.monotonic()
    for _ in range(rotations):
        old = current["token"]
        sent = time.perf_counter()
        reply = await client.request(
            AUTH_TOKEN_ROTATE, RotateToken(integration_id=INTEGRATION.id), timeout=10
        )
        latencies.append((time.perf_counter() - sent) * 1000)
        assert isinstance(reply, TokenIssued), reply
        retired.append((old, time.monotonic()))
        current["token"] = reply.token
    elapsed = time.monotonic() - started
    late = sum(1 for old, returned in retired for at in accepted.get(old, []) if at > returned)

    # Phase 2: one more replica heartbeats but never acknowledges (stalled or cut off from its inbox).
    async def stalled_heartbeats() -> None:
        while not stop.is_set():
            beat = EdgeHeartbeat(instance_id="edge-stalled", sent_at=time.time())
            await client.nc.publish(EDGE_HEARTBEAT_SUBJECT, encode(beat))
            await asyncio.sleep(1.0)

    stalled = asyncio.create_task(stalled_heartbeats())
    await asyncio.sleep(1.2)
    stalled_latencies = []
    for _ in range(3):
        sent = time.perf_counter()
        reply = await client.request(
            AUTH_TOKEN_ROTATE, RotateToken(integration_id=INTEGRATION.id), timeout=10
        )
        stalled_latencies.append((time.perf_counter() - sent) * 1000)
        current["token"] = reply.token if isinstance(reply, TokenIssued) else current["token"]
    stop.set()
    await asyncio.gather(*tasks, stalled)

    print(f"rotate latency, {replicas} edge replicas x {workers} workers authenticating concurrently")
    print(f"  rotations: {rotations} in {elapsed:.1f} s, authentications during the run: {requests}")
    print(
        f"  p50 {statistics.median(latencies):.2f} ms   p99 {percentile(latencies, 0.99):.2f} ms   "
        f"max {max(latencies):.2f} ms"
    )
    print(f"  requests accepted with a rotated token after rotate returned: {late}")
    print(
        "  with one live-but-unresponsive replica: "
        + ", ".join(f"{value:.0f} ms" for value in stalled_latencies)
        + " (bounded wait, then the replica's own trust window has run out)"
    )
    for bus, verifier in edges:
        await verifier.stop()
        await bus.close()
    await client.close()
    await auth.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotations", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4, help="concurrent authenticating tasks per replica")
    args = parser.parse_args()
    asyncio.run(measure(args.rotations, args.replicas, args.workers))


async def measure(rotations: int, replicas: int, workers: int) -> None:
    async with infrastructure("rotatebench") as (nats_url, database_url):
        await run(nats_url, database_url, rotations, replicas, workers)


if __name__ == "__main__":
    main()
