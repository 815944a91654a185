"""What FastStream costs a request handler: the same trivial handler (``sessions.session.get`` answering
``NotFound``) served by the lean ``Bus.serve`` and by a FastStream subscriber (``skillrelay_common.broker
.Answers``), asked by the same ``Bus.request`` client, sequentially (latency) and with 32 in flight
(throughput). The handler does no work, so the difference is the framework's own cost per request.

    .tools/bin/uv run --frozen --no-sync python -m benchmarks.bus_handlers [--requests 4000] [--rounds 5]

An embedded nats-server (or ``SKILLRELAY_NATS_URL``); each server runs in its own process pinned to one
CPU, the client on the other; rounds alternate lean and FastStream so that load from other processes hits
both alike; the median round is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import percentile
from skillrelay_common.broker import Answers, service_broker
from skillrelay_common.logging import configure_logging
from skillrelay_common.messaging import Bus
from skillrelay_common.runtime import run_until_signalled
from skillrelay_common.schemas.base import NotFound
from skillrelay_common.schemas.sessions import GetSession
from skillrelay_common.subjects import SESSIONS_GET, Endpoint
from skillrelay_devstack.embedded import EmbeddedNats

REPLY = SESSIONS_GET.reply
LEAN: Endpoint[GetSession, object] = Endpoint("benchlean.session.get", GetSession, REPLY, "benchlean")
FASTSTREAM: Endpoint[GetSession, object] = Endpoint("benchfs.session.get", GetSession, REPLY, "benchfs")
IN_FLIGHT = 32


async def not_found(_: GetSession) -> NotFound:
    return NotFound(what="session")


def serve(url: str, kind: str) -> None:
    """The server process: one endpoint on the lean bus or on FastStream, until signalled."""
    configure_logging(
        "info", json=False, service=f"bench-{kind}"
    )  # as a service: FastStream's lines at debug
    held: list[object] = []

    async def start() -> None:
        if kind == "lean":
            bus = await Bus.connect(url, "benchlean")
            bus.serve(LEAN, not_found)
            await bus.start()
            held.append(bus)
            return
        answers = Answers("benchfs", "benchfs-1")
        answers.serve(FASTSTREAM, not_found)
        broker = service_broker(url, "benchfs-1", routers=(answers.router,))
        answers.max_payload = (await broker.connect()).max_payload
        await broker.start()
        held.append(broker)

    async def stop() -> None:
        for thing in held:
            await thing.stop() if hasattr(thing, "stop") else await thing.close()  # type: ignore[attr-defined]

    run_until_signalled(start, stop)


def cpu_seconds(pid: int) -> float:
    """User + system time of a process so far (``/proc/<pid>/stat``): what the server spent, whatever
    else the machine is doing."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    client: Bus, endpoint: Endpoint[GetSession, object], requests: int, server_pid: int
) -> dict[str, float]:
    request = GetSession(session_id="s1")
    latencies: list[float] = []
    for _ in range(requests // 4):
        started = time.perf_counter()
        reply = await client.request(endpoint, request)
        latencies.append(time.perf_counter() - started)
        assert isinstance(reply, NotFound), reply
    remaining = requests

    async def flight() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            assert isinstance(await client.request(endpoint, request), NotFound)

    started, cpu_before = time.perf_counter(), cpu_seconds(server_pid)
    await asyncio.gather(*(flight() for _ in range(IN_FLIGHT)))
    elapsed = time.perf_counter() - started
    return {
        "cpu_us": (cpu_seconds(server_pid) - cpu_before) / requests * 1e6,
        "p50_us": percentile(latencies, 0.5) * 1e6,
        "p99_us": percentile(latencies, 0.99) * 1e6,
        "rps": requests / elapsed,
    }


def _pin(pid: int, cpu: int | None) -> None:
    if cpu is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {cpu})


def run(url: str, requests: int, rounds: int) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (cpus[0], cpus[1]) if len(cpus) > 1 else (None, None)
    servers = [
        subprocess.Popen([sys.executable, "-m", "benchmarks.bus_handlers", "--serve", url, kind])
        for kind in ("lean", "faststream")
    ]
    for server in servers:
        _pin(server.pid, server_cpu)
    _pin(os.getpid(), client_cpu)
    try:
        medians = asyncio.run(rounds_of(url, requests, rounds, servers[0].pid, servers[1].pid))
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
    report(medians, requests, rounds)


async def rounds_of(
    url: str, requests: int, rounds: int, lean_pid: int, faststream_pid: int
) -> dict[str, dict[str, float]]:
    client = await Bus.connect(url, "benchclient")
    try:
        for endpoint, pid in ((LEAN, lean_pid), (FASTSTREAM, faststream_pid)):  # wait for both, warm up
            deadline = time.monotonic() + 30
            while not isinstance(await client.request(endpoint, GetSession(session_id="w")), NotFound):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{endpoint.subject} never answered")
                await asyncio.sleep(0.1)
            await measure(client, endpoint, requests // 4, pid)
        results: dict[str, list[dict[str, float]]] = {"lean Bus.serve": [], "FastStream subscriber": []}
        for _ in range(rounds):
            results["lean Bus.serve"].append(await measure(client, LEAN, requests, lean_pid))
            results["FastStream subscriber"].append(
                await measure(client, FASTSTREAM, requests, faststream_pid)
            )
    finally:
        await client.close()
    return {
        name: {key: statistics.median(row[key] for row in rows) for key in rows[0]}
        for name, rows in results.items()
    }


def report(medians: dict[str, dict[str, float]], requests: int, rounds: int) -> None:
    print(f"{requests} requests x {rounds} rounds; median round; {IN_FLIGHT} in flight for req/s")
    print(f"{'server':<24}{'p50 µs':>10}{'p99 µs':>10}{'req/s':>10}{'server CPU µs/req':>20}")
    for name, m in medians.items():
        print(f"{name:<24}{m['p50_us']:>10.0f}{m['p99_us']:>10.0f}{m['rps']:>10.0f}{m['cpu_us']:>20.0f}")
    lean, fast = medians["lean Bus.serve"], medians["FastStream subscriber"]
    print(
        f"FastStream: +{fast['p50_us'] - lean['p50_us']:.0f} µs at p50, "
        f"{fast['rps'] / lean['rps']:.2f}x the lean req/s, "
        f"+{fast['cpu_us'] - lean['cpu_us']:.0f} µs server CPU per request"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", nargs=2, metavar=("URL", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    external = os.environ.get("SKILLRELAY_NATS_URL")
    if external:
        run(external, args.requests, args.rounds)
        return
    with tempfile.TemporaryDirectory() as state:
        server = EmbeddedNats(store_dir=Path(state) / "nats")
        server.start()
        try:
            run(server.url, args.requests, args.rounds)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
