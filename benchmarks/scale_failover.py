"""Two edge replicas holding listening clients, one killed, its clients reconnecting to the other:
``make bench-scale`` (its third part).

Starts embedded NATS and PostgreSQL, the real sessions service, the benchmark control plane and two
edge replicas, each pinned to its own core. Opens ``--per-replica`` 2026-era ``subscriptions/listen``
streams on each (stateless clients: no session to create, so tens of thousands open in minutes) and
``--sessions`` 2025-era GET streams on the first. Then:

1. prints the clients each replica holds and its memory per client; times one ``list_changed`` to all;
2. kills the first replica (SIGKILL: no graceful end) and reconnects its clients to the second as
   clients do: a new ``subscriptions/listen``, and for a 2025 client a GET with its ``Mcp-Session-Id``
   (the session lives in the sessions service, so any replica serves it): reconnect time p50/p99;
3. times a ``list_changed`` to every client, now all on the surviving replica.

Each replica holds one descriptor per client and this sandbox's hard open-files limit (20,000, not
raisable without ``CAP_SYS_RESOURCE``) binds the survivor, which must take the killed replica's
clients too: so the default is 2 x 9,000 here. See docs/scale.md.

    .tools/bin/uv run --frozen --no-sync python -m benchmarks.scale_failover [--per-replica 9000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import tempfile
import time
from pathlib import Path

from benchmarks.__main__ import INTEGRATION_ID
from benchmarks.harness import (
    PYTHON,
    edge_env,
    running,
    start_control_plane,
    start_sessions_service,
    state_folder,
    wait_http,
)
from benchmarks.scale import (
    Listener,
    _path,
    _request,
    _session_headers,
    close_streams,
    fan_out,
    open_listen_streams,
    open_sessions,
    open_stream,
    percentile,
    raise_open_files,
    rss_bytes,
)
from skillrelay_common.messaging import Bus
from skillrelay_devstack.embedded import free_port, wait_for_port


async def open_get_stream(port: int, token: str, integration: str, session: str) -> Listener:
    headers = {**_session_headers(token, session), "Accept": "text/event-stream"}
    return await open_stream(port, _request("GET", _path(integration), headers), [])


async def reconnect(
    port: int, token: str, lost: list[Listener], sessions: list[tuple[str, str]], killed_at: float
) -> list[Listener]:
    """The killed replica's clients, opened again on ``port``: listen streams anew, GET streams with
    their session id. Prints how long after the kill each was open again."""
    reopened: list[Listener] = []
    gets = iter(sessions)

    async def again_get() -> None:
        for integration, session in gets:
            reopened.append(await open_get_stream(port, token, integration, session))

    listening = asyncio.ensure_future(open_listen_streams(port, token, len(lost) - len(sessions), 0))
    await asyncio.gather(listening, *(again_get() for _ in range(10)))
    reopened += listening.result()
    delays = [listener.opened_at - killed_at for listener in reopened]
    print(
        f"reconnected to the survivor: {len(reopened)} of {len(lost)} "
        f"({len(sessions)} GET streams with their Mcp-Session-Id); after the kill p50 "
        f"{percentile(delays, 0.5):.1f} s, p99 {percentile(delays, 0.99):.1f} s, max {max(delays):.1f} s"
    )
    return reopened


async def measure(
    pids: tuple[int, int], ports: tuple[int, int], token: str, nats_url: str, per_replica: int, gets: int
) -> None:
    bus = await Bus.connect(nats_url, "bench-failover")
    try:
        sessions = await open_sessions(ports[0], token, gets)
        before = [rss_bytes(pid) for pid in pids]
        started = time.perf_counter()
        held = await asyncio.gather(
            *(open_listen_streams(port, token, per_replica, 0) for port in ports),
        )
        first_gets = [await open_get_stream(ports[0], token, *session) for session in sessions]
        opened = time.perf_counter() - started
        await asyncio.sleep(2)
        on_first, on_second = held[0] + first_gets, held[1]
        for name, pid, clients, was in (
            ("first", pids[0], on_first, before[0]),
            ("second", pids[1], on_second, before[1]),
        ):
            growth = (rss_bytes(pid) - was) / len(clients) / 1024
            print(f"{name + ' replica holds:':<27}{len(clients)} ({growth:.1f} KiB per client)")
        everyone = on_first + on_second
        print(f"both replicas hold:        {len(everyone)} (opened in {opened:.1f}s)")
        await fan_out(bus, everyone, "ability", b"tools/list_changed", None, len(everyone), pids)
        killed_at = time.perf_counter()
        os.kill(pids[0], signal.SIGKILL)
        # The kernel closes the dead replica's sockets; each client notices its stream end.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lost = [listener for listener in on_first if listener.ended()]
            if len(lost) == len(on_first):
                break
            await asyncio.sleep(0.1)
        print(f"first replica killed:      {len(lost)} of its {len(on_first)} clients saw their stream end")
        reopened = await reconnect(ports[1], token, lost, sessions, killed_at)
        survivors = on_second + reopened
        for listener in survivors:
            listener.arrivals.clear()
        await fan_out(bus, survivors, "ability", b"tools/list_changed", None, len(survivors), pids[1:])
        close_streams(survivors)
    finally:
        await bus.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--per-replica", type=int, default=9_000, help="listen streams opened on each replica"
    )
    parser.add_argument("--sessions", type=int, default=100, help="2025-era GET streams on the first replica")
    args = parser.parse_args()
    total = 2 * args.per_replica + args.sessions
    limit = raise_open_files(total + 1_000)
    print(f"open-files limit: {limit}; clients: {total} over two replicas; cores: {os.cpu_count()}")
    state = Path(tempfile.mkdtemp(prefix="skillrelay-failover-"))
    logs = state_folder(state)
    token = secrets.token_urlsafe(24)
    with contextlib.ExitStack() as stack:
        nats_url, env = start_sessions_service(stack, state, logs, "bench_failover")
        start_control_plane(stack, env, logs, nats_url, INTEGRATION_ID, token, "http://127.0.0.1:9/")
        ports = (free_port(), free_port())
        edges = []
        cores = sorted(os.sched_getaffinity(0))
        for number, port in enumerate(ports):
            command = [PYTHON, "-m", "skillrelay_edge"]
            edge = stack.enter_context(running(command, edge_env(env, port), logs / f"edge{number}.log"))
            with contextlib.suppress(OSError):
                os.sched_setaffinity(edge.pid, {cores[number % len(cores)]})  # a replica on each core
            edges.append(edge)
        for port, edge in zip(ports, edges, strict=True):
            wait_for_port("127.0.0.1", port, 120, edge)
            wait_http(f"http://127.0.0.1:{port}/ready")
        asyncio.run(
            measure((edges[0].pid, edges[1].pid), ports, token, nats_url, args.per_replica, args.sessions)
        )
    print(f"logs: {logs}")


if __name__ == "__main__":
    main()
