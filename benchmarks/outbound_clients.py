"""Which HTTP client for outbound calls: the same call as an ``http`` ability makes (POST a small JSON
body, read the answer bounded to 1 MiB, check the status), by httpx, aiohttp's client and the
project's own (``skillrelay_common.outbound``), against ``benchmarks.upstream_echo``.

    .tools/bin/uv run --frozen --no-sync python -m benchmarks.outbound_clients [--rounds 3]

The upstream runs on one CPU, each client in its own process on the other (uvloop, 16 calls in
flight), in interleaved rounds. Reported per client: calls/s and the client's CPU time per call
(``time.process_time``), the figure that decides how much an edge spends per ``http`` call.
aiohttp is measured only where it is installed (it is not a project dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

from skillrelay_common.logging import configure_logging
from skillrelay_devstack.embedded import free_port, wait_for_port

BODY = b'{"text":"hello benchmark"}'
LIMIT = 1024 * 1024
Call = Callable[[], Awaitable[bytes]]


async def _httpx(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import httpx

    client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
    headers = {"Content-Type": "application/json", "Accept": "application/json, */*"}

    async def call() -> bytes:
        # As the edge's http ability did before (pinned URL, streamed body read with a bound).
        request = client.build_request("POST", url, headers=headers, content=BODY, timeout=10)
        response = await client.send(request, stream=True)
        try:
            chunks = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > LIMIT:
                    raise RuntimeError("too large")
                chunks.append(chunk)
        finally:
            await response.aclose()
        if response.status_code != 200:
            raise RuntimeError(str(response.status_code))
        return b"".join(chunks)

    return call, client.aclose


async def _aiohttp(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, use_dns_cache=True),
        timeout=aiohttp.ClientTimeout(total=10),
        auto_decompress=False,
    )
    headers = {"Content-Type": "application/json", "Accept": "application/json, */*"}

    async def call() -> bytes:
        async with session.post(url, data=BODY, headers=headers, allow_redirects=False) as response:
            chunks = []
            size = 0
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > LIMIT:
                    raise RuntimeError("too large")
                chunks.append(chunk)
            if response.status != 200:
                raise RuntimeError(str(response.status))
            return b"".join(chunks)

    return call, session.close


async def _lean(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    from skillrelay_common.outbound import OutboundClient, RequestShape, TargetCache

    client = OutboundClient(TargetCache(allow_private=True))
    shape = RequestShape("POST", url, {"Content-Type": "application/json", "Accept": "application/json, */*"})

    async def call() -> bytes:
        response = await client.send(shape, body=BODY, timeout=10, max_body=LIMIT)
        if response.status != 200:
            raise RuntimeError(str(response.status))
        return response.body

    return call, client.aclose


CLIENTS: dict[str, Callable[[str], Awaitable[tuple[Call, Callable[[], Awaitable[None]]]]]] = {
    "httpx": _httpx,
    "aiohttp": _aiohttp,
    "skillrelay outbound": _lean,
}


async def _measure(name: str, url: str, duration: float, concurrency: int) -> dict[str, float]:
    call, close = await CLIENTS[name](url)

    async def loop_until(deadline: float, counter: list[int]) -> None:
        while time.perf_counter() < deadline:
            body = await call()
            assert body == BODY, body
            counter[0] += 1

    warm = [0]
    deadline = time.perf_counter() + 0.5
    await asyncio.gather(*(loop_until(deadline, warm) for _ in range(concurrency)))
    done = [0]
    cpu, wall = time.process_time(), time.perf_counter()
    deadline = wall + duration
    await asyncio.gather(*(loop_until(deadline, done) for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await close()
    return {"calls_per_s": done[0] / wall, "cpu_us_per_call": cpu / done[0] * 1e6}


def _one(name: str, url: str, duration: float, concurrency: int) -> None:
    import uvloop

    configure_logging("warning", json=True)  # as the edge runs (unconfigured, structlog prints debug)

    print(json.dumps(uvloop.run(_measure(name, url, duration, concurrency))))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.outbound_clients")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args.one, args.url, args.duration, args.concurrency)
        return
    cpus = sorted(os.sched_getaffinity(0))
    upstream_cpu, client_cpu = ({cpus[0]}, {cpus[1]}) if len(cpus) > 1 else (None, None)
    names = [name for name in CLIENTS if name != "aiohttp" or _importable("aiohttp")]
    port = free_port()
    upstream = subprocess.Popen([sys.executable, "-m", "benchmarks.upstream_echo", str(port)])
    try:
        if upstream_cpu:
            os.sched_setaffinity(upstream.pid, upstream_cpu)
        wait_for_port("127.0.0.1", port, 10, upstream)
        url = f"http://127.0.0.1:{port}/echo"
        results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for number in range(1, args.rounds + 1):
            print(f"round {number}", flush=True)
            for name in names:
                command = [sys.executable, "-m", "benchmarks.outbound_clients", "--one", name, "--url", url]
                command += ["--duration", str(args.duration), "--concurrency", str(args.concurrency)]
                process = subprocess.Popen(command, stdout=subprocess.PIPE)
                if client_cpu:
                    os.sched_setaffinity(process.pid, client_cpu)
                out, _ = process.communicate(timeout=120)
                data = json.loads(out.decode().strip().splitlines()[-1])
                results[name].append(data)
                print(
                    f"  {name:<22} {data['calls_per_s']:>8.0f} calls/s"
                    f"  {data['cpu_us_per_call']:>6.1f} µs CPU per call",
                    flush=True,
                )
    finally:
        upstream.terminate()
        upstream.wait(10)
    print("\nmedian of the rounds:\n")
    print("| client | calls/s | client CPU µs per call |")
    print("|---|---:|---:|")
    for name in names:
        rate = statistics.median(r["calls_per_s"] for r in results[name])
        cost = statistics.median(r["cpu_us_per_call"] for r in results[name])
        print(f"| {name} | {rate:.0f} | {cost:.1f} |")


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
