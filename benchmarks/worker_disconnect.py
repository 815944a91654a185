"""How fast rotating or deleting a worker credential cuts off the workers connected with it.

``.tools/bin/uv run --frozen --no-sync python -m benchmarks.worker_disconnect [--rounds 30] [--workers 3]``

Starts an embedded nats-server with the configuration ``make run`` writes (auth callout) and an
embedded PostgreSQL, the auth service's NATS side in this process, then per round: a credential,
``--workers`` connections made with it (nats-py), and a rotation (odd rounds: a deletion). Timed: from
sending the request to its reply (auth replies once the workers are kicked), and from sending it to
the moment each worker's connection saw the server close it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import nats

from benchmarks.harness import percentile
from skillrelay_auth.app import AuthComponents, nats_wiring, service_resources
from skillrelay_common import bus_auth
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.auth import (
    CreateWorkerCredential,
    DeleteWorkerCredential,
    RotateWorkerCredential,
    WorkerCredentialIssued,
)
from skillrelay_common.settings import DatabaseSettings, NatsSettings, Settings
from skillrelay_common.subjects import (
    AUTH_WORKER_CREDENTIAL_CREATE,
    AUTH_WORKER_CREDENTIAL_DELETE,
    AUTH_WORKER_CREDENTIAL_ROTATE,
)
from skillrelay_devstack.embedded import EmbeddedNats, EmbeddedPostgres
from skillrelay_worker.credential import WorkerCredential


async def _expected(_: Exception) -> None:
    """The server closing a kicked connection is what is measured, not an error."""


async def run(
    plain_url: str, secrets: bus_auth.BusSecrets, database_url: str, rounds: int, workers: int
) -> None:
    settings = Settings(
        nats=NatsSettings(
            url=bus_auth.service_url(plain_url, secrets),
            system_url=bus_auth.system_url(plain_url, secrets),
            callout_seed=secrets.callout_seed,
        ),
        database=DatabaseSettings(url=database_url),
        secret_key="bench-" + "k" * 26,
    )
    auth = service_resources(settings)
    components = AuthComponents(settings)
    await auth.start(nats_wiring(auth, components))
    client = await Bus.connect(bus_auth.service_url(plain_url, secrets), "bench")
    replies: list[float] = []
    cut_offs: list[float] = []
    try:
        for index in range(rounds):
            issued = await client.request(
                AUTH_WORKER_CREDENTIAL_CREATE, CreateWorkerCredential(owner_id="user_bench", name=f"w{index}")
            )
            assert isinstance(issued, WorkerCredentialIssued), issued
            credential = WorkerCredential.parse(issued.credential)
            cut: list[asyncio.Future[float]] = []
            connections = []
            for _ in range(workers):
                done = asyncio.get_running_loop().create_future()
                cut.append(done)

                async def on_disconnect(done: asyncio.Future[float] = done) -> None:
                    if not done.done():
                        done.set_result(time.perf_counter())

                connections.append(
                    await nats.connect(
                        bus_auth.with_user(plain_url, credential.credential_id, credential.secret),
                        disconnected_cb=on_disconnect,
                        error_cb=_expected,
                        max_reconnect_attempts=0,
                        allow_reconnect=False,
                    )
                )
            started = time.perf_counter()
            if index % 2:
                reply: object = await client.request(
                    AUTH_WORKER_CREDENTIAL_DELETE,
                    DeleteWorkerCredential(owner_id="user_bench", credential_id=credential.credential_id),
                    timeout=10,
                )
            else:
                reply = await client.request(
                    AUTH_WORKER_CREDENTIAL_ROTATE,
                    RotateWorkerCredential(owner_id="user_bench", credential_id=credential.credential_id),
                    timeout=10,
                )
            replies.append((time.perf_counter() - started) * 1000)
            assert type(reply).__name__ in {"Ok", "WorkerCredentialIssued"}, reply
            for moment in await asyncio.wait_for(asyncio.gather(*cut), 10):
                cut_offs.append((moment - started) * 1000)
            for nc in connections:
                await nc.close()
    finally:
        await client.close()
        await auth.stop()
        await components.close()
    for label, values in (("reply (rotate/delete answered)", replies), ("worker disconnected", cut_offs)):
        print(
            f"{label:32s} n={len(values):4d}  p50={statistics.median(values):7.1f} ms  "
            f"p95={percentile(values, 0.95):7.1f} ms  max={max(values):7.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=3, help="connections per credential")
    args = parser.parse_args()
    secrets = bus_auth.BusSecrets.generate()
    with tempfile.TemporaryDirectory(prefix="skillrelay-disconnect-bench-") as tmp:
        state = Path(tmp)
        os.chmod(state, 0o755)  # noqa: S103 (embedded PostgreSQL may run as another user)
        nats_server = EmbeddedNats(
            store_dir=state / "nats", authorization=bus_auth.embedded_server_config(secrets)
        )
        postgres = EmbeddedPostgres(data_dir=state / "pg")
        try:
            plain_url = nats_server.start()
            postgres.start()
            database_url = postgres.create_database("disconnectbench")
            asyncio.run(run(plain_url, secrets, database_url, args.rounds, args.workers))
        finally:
            postgres.stop()
            nats_server.stop()


if __name__ == "__main__":
    main()
