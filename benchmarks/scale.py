"""How many listening clients one edge replica holds, and what they cost: ``make bench-scale``.

Starts embedded NATS and PostgreSQL, the real sessions service, the benchmark control plane (registry
and auth stand-ins) and one edge replica pinned to one CPU core. Then, from this process on another
core, with raw asyncio sockets (one small protocol object per client, no HTTP library):

1. measures ``tools/call`` latency (p50/p99) with no listener connected (idle);
2. initializes N MCP sessions (sessions created per second) and opens one GET stream each;
3. prints the clients held and the edge's memory growth per client (RSS, /proc);
4. measures ``tools/call`` again with every listener connected (loaded);
5. publishes the registry event a REST change of an ability publishes and times its
   ``notifications/tools/list_changed`` to every listener (fan-out p50/p99, how many got it), and a
   ``resources/updated`` reaching exactly the listeners subscribed to that URI;
6. counts the JetStream consumers on ``MCP_EVENTS`` (listening creates none).

    .tools/bin/uv run --frozen --no-sync python -m benchmarks.scale [--clients 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import resource
import secrets
import signal
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Literal

import msgspec

from benchmarks.__main__ import INTEGRATION_ID, MODERN
from benchmarks.harness import (
    PYTHON,
    edge_env,
    running,
    start_control_plane,
    start_sessions_service,
    state_folder,
    wait_http,
)
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.registry import SkillsetChanged
from skillrelay_common.subjects import MCP_EVENTS
from skillrelay_devstack.embedded import free_port, wait_for_port

PER_INTEGRATION = 5000  # clients per integration (an integration keeps at most 10,000 live sessions)
SKILLSET = "skillset_bench"
WATCHED = "bench://watched"


def raise_open_files(wanted: int) -> int:
    """Raise this process's (and so its children's) open-files limit; root may raise the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, wanted)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(hard, target)))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (/proc/<pid>/stat), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def close_streams(listeners: list[Listener]) -> None:
    for listener in listeners:
        if listener.transport is not None:
            listener.transport.close()


def _path(integration: str) -> str:
    return f"/api/v1/integration/mcpserver/{integration}/mcp"


def _request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _rpc(method: str, params: dict[str, object], request_id: int = 1) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode()


async def _exchange(port: int, request: bytes) -> tuple[bytes, bytes]:
    """One request on a fresh connection: (response head, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return head, await reader.readexactly(length)
    finally:
        writer.close()


class Listener(asyncio.Protocol):
    """One GET stream: notes when it opened and when each awaited notification arrived."""

    __slots__ = ("_buffer", "arrivals", "opened", "opened_at", "transport")

    def __init__(self, opened: asyncio.Future[None]) -> None:
        self.opened = opened
        self.opened_at = 0.0
        self.arrivals: dict[bytes, float] = {}
        self.transport: asyncio.Transport | None = None
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.opened.done():
            if b" 200 " not in data[:16]:
                self.opened.set_exception(RuntimeError(data[:200].decode(errors="replace")))
                return
            self.opened.set_result(None)
            self.opened_at = now
        for marker in (b"tools/list_changed", b"resources/updated"):
            if marker in data and marker not in self.arrivals:
                self.arrivals[marker] = now

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.opened.done():
            self.opened.set_exception(RuntimeError("closed"))

    def ended(self) -> bool:
        return self.transport is None


async def open_sessions(port: int, token: str, count: int, concurrency: int = 32) -> list[tuple[str, str]]:
    """``count`` sessions as (integration, session id), PER_INTEGRATION to an integration; the
    integrations are filled at once (the sessions service serialises inserts only within one)."""
    integrations = [
        (f"{INTEGRATION_ID}_{first // PER_INTEGRATION}", min(PER_INTEGRATION, count - first))
        for first in range(0, count, PER_INTEGRATION)
    ]
    opened = await asyncio.gather(
        *(_open_sessions(port, token, integration, size, concurrency) for integration, size in integrations)
    )
    return [
        (integration, session)
        for (integration, _), sessions in zip(integrations, opened, strict=True)
        for session in sessions
    ]


async def _open_sessions(port: int, token: str, integration: str, count: int, concurrency: int) -> list[str]:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {token}",
    }
    init = _rpc(
        "initialize",
        {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
        0,
    )
    request = _request("POST", _path(integration), headers, init)
    sessions: list[str] = []

    async def worker(n: int) -> None:
        while len(sessions) < count:
            head, _ = await _exchange(port, request)
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"mcp-session-id:"):
                    sessions.append(line.split(b":", 1)[1].strip().decode())

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return sessions[:count]


def _session_headers(token: str, session: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Mcp-Session-Id": session,
        "MCP-Protocol-Version": "2025-11-25",
    }


async def subscribe(port: int, token: str, integration: str, session: str) -> None:
    headers = {
        **_session_headers(token, session),
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    await _exchange(
        port, _request("POST", _path(integration), headers, _rpc("resources/subscribe", {"uri": WATCHED}))
    )


async def open_stream(port: int, request: bytes, retries: list[int]) -> Listener:
    """One listening stream; a refusal (a busy sessions or auth service may answer 503) is retried
    after a second, as a client would, up to five times."""
    loop = asyncio.get_running_loop()
    for attempt in range(5):
        opened: asyncio.Future[None] = loop.create_future()
        _, listener = await loop.create_connection(functools.partial(Listener, opened), "127.0.0.1", port)
        assert listener.transport is not None
        listener.transport.write(request)
        try:
            await opened
        except RuntimeError:
            if not listener.ended():
                listener.transport.close()
            retries.append(attempt)
            if attempt == 4:
                raise
            await asyncio.sleep(1)
            continue
        return listener
    raise AssertionError("unreachable")


async def open_listeners(
    port: int, token: str, sessions: list[tuple[str, str]], concurrency: int = 50
) -> list[Listener]:
    listeners: list[Listener] = []
    retries: list[int] = []
    pending = iter(sessions)

    async def worker() -> None:
        for integration, session in pending:
            headers = {**_session_headers(token, session), "Accept": "text/event-stream"}
            listeners.append(await open_stream(port, _request("GET", _path(integration), headers), retries))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if retries:
        print(f"GET streams retried after a refusal: {len(retries)}")
    return listeners


async def open_listen_streams(
    port: int, token: str, count: int, subscribers: int, concurrency: int = 50
) -> list[Listener]:
    """``count`` 2026-07-28 ``subscriptions/listen`` streams (stateless: no session), on the first
    integration; the first ``subscribers`` of them also ask for ``resources/updated`` of WATCHED."""
    listeners: list[Listener] = []
    retries: list[int] = []
    pending = iter(range(count))
    path = _path(f"{INTEGRATION_ID}_0")
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "subscriptions/listen",
    }
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }

    async def worker() -> None:
        for index in pending:
            wanted: dict[str, object] = {"toolsListChanged": True}
            if index < subscribers:
                wanted["resourceSubscriptions"] = [WATCHED]
            body = _rpc("subscriptions/listen", {"notifications": wanted, "_meta": meta}, index + 1)
            listeners.append(await open_stream(port, _request("POST", path, headers, body), retries))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if retries:
        print(f"listen streams retried after a refusal: {len(retries)}")
    return listeners


async def call_latencies(port: int, token: str, warm: tuple[str, str], calls: int) -> list[float]:
    integration, session = warm
    headers = {
        **_session_headers(token, session),
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    request = _request(
        "POST", _path(integration), headers, _rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}})
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    found: list[float] = []
    try:
        for _ in range(calls):
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            found.append(time.perf_counter() - started)
    finally:
        writer.close()
    return found


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


async def await_arrivals(listeners: list[Listener], marker: bytes, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (  # noqa: ASYNC110 (polls counters kept by socket callbacks)
        sum(marker in listener.arrivals for listener in listeners) < expected and time.monotonic() < deadline
    ):
        await asyncio.sleep(0.05)


async def edge_snapshot(edge_pid: int, base: str, number: int) -> tracemalloc.Snapshot:
    """A tracemalloc snapshot of the edge run by ``benchmarks.traced_edge`` (``--profile-memory``)."""
    os.kill(edge_pid, signal.SIGUSR1)
    done = f"{base}.{number}.done"
    while not os.path.exists(done):  # noqa: ASYNC110, ASYNC240 (the edge writes it once its snapshot is out)
        await asyncio.sleep(0.2)
    return tracemalloc.Snapshot.load(f"{base}.{number}")


def print_allocations(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, clients: int) -> None:
    """The Python allocations that grew while the clients connected, per client, by line."""
    stats = after.compare_to(before, "lineno")
    total = sum(stat.size_diff for stat in stats)
    print(f"edge Python heap growth (tracemalloc): {total / max(1, clients):.0f} B per client; by line:")
    for stat in stats[:25]:
        frame = stat.traceback[0]
        print(
            f"  {stat.size_diff / max(1, clients):8.0f} B  {stat.count_diff / max(1, clients):5.2f} blocks  "
            f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}"
        )


def print_memory(kind: str, held: int, before: int, after: int, seconds: float) -> None:
    print(f"{kind} held: {held} (opened in {seconds:.1f}s)")
    print(
        f"{'  edge memory:':<27}{before / 2**20:.0f} MiB -> {after / 2**20:.0f} MiB, "
        f"{(after - before) / max(1, held) / 1024:.1f} KiB per client"
    )


async def fan_out(
    bus: Bus,
    listeners: list[Listener],
    entity: Literal["ability", "resource"],
    marker: bytes,
    uri: str | None,
    expected: int,
    edge_pids: tuple[int, ...] = (),
) -> None:
    """Publish the registry event a REST change publishes; time its notification at every listener.
    Also prints the edge CPU the fan-out took per listener reached: on a shared machine the wall
    time depends on what else runs, the CPU time much less."""
    event = SkillsetChanged(
        skillset_id=SKILLSET, owner_id="user_bench", change="updated", entity=entity, uri=uri, revision=1
    )
    cpu = sum(cpu_seconds(pid) for pid in edge_pids)
    sent = time.perf_counter()
    await bus.nc.publish(f"events.registry.{entity}.updated", msgspec.json.encode(event))
    await await_arrivals(listeners, marker, expected, 60)
    cpu = sum(cpu_seconds(pid) for pid in edge_pids) - cpu
    delays = [listener.arrivals[marker] - sent for listener in listeners if marker in listener.arrivals]
    print(
        f"{marker.decode():<26} reached {len(delays)} of {expected} expected; "
        f"p50 {percentile(delays, 0.5) * 1e3:.0f} ms, p99 {percentile(delays, 0.99) * 1e3:.0f} ms, "
        f"max {max(delays, default=float('nan')) * 1e3:.0f} ms"
    )
    if edge_pids and delays:
        print(f"{'':<27}edge CPU {cpu * 1e3:.0f} ms, {cpu / len(delays) * 1e6:.0f} µs per listener reached")


async def measure(
    edge_pid: int,
    port: int,
    token: str,
    nats_url: str,
    clients: int,
    listens: int,
    subscribers: int,
    calls: int,
    snapshots: str | None = None,
) -> None:
    bus = await Bus.connect(nats_url, "bench-scale")
    try:
        warm = (await open_sessions(port, token, 1))[0]
        await call_latencies(port, token, warm, 200)
        idle = await call_latencies(port, token, warm, calls)
        started = time.perf_counter()
        sessions = await open_sessions(port, token, clients)
        created = time.perf_counter() - started
        rate = clients / created if created else float("nan")
        print(f"sessions created:          {clients} in {created:.1f}s ({rate:.0f}/s, by HTTP initialize)")
        for integration, session in sessions[:subscribers]:
            await subscribe(port, token, integration, session)
        traced = await edge_snapshot(edge_pid, snapshots, 0) if snapshots else None
        before = rss_bytes(edge_pid)
        started = time.perf_counter()
        streams = await open_listeners(port, token, sessions)
        opened = time.perf_counter() - started
        await asyncio.sleep(2)  # let the edge settle (allocations of the last connections)
        middle = rss_bytes(edge_pid)
        if snapshots and traced is not None:
            later = await edge_snapshot(edge_pid, snapshots, 1)
            if streams:
                print_allocations(traced, later, len(streams))
            traced = later
        print_memory("GET streams (2025)", len(streams), before, middle, opened)
        started = time.perf_counter()
        listening = await open_listen_streams(port, token, listens, subscribers)
        opened = time.perf_counter() - started
        await asyncio.sleep(2)
        after = rss_bytes(edge_pid)
        if snapshots and traced is not None and listening:
            print_allocations(traced, await edge_snapshot(edge_pid, snapshots, 2), len(listening))
        print_memory("subscriptions/listen (2026)", len(listening), middle, after, opened)
        listeners = streams + listening
        print_memory("listening clients", len(listeners), before, after, 0)
        info = await bus.js.stream_info(MCP_EVENTS.name)
        print(f"JetStream consumers on {MCP_EVENTS.name}: {info.state.consumer_count}")
        loaded = await call_latencies(port, token, warm, calls)
        idle_p50, idle_p99 = percentile(idle, 0.5) * 1e3, percentile(idle, 0.99) * 1e3
        print(f"tools/call p50/p99 idle:   {idle_p50:.2f} / {idle_p99:.2f} ms")
        print(
            f"tools/call p50/p99 loaded: {percentile(loaded, 0.5) * 1e3:.2f} / "
            f"{percentile(loaded, 0.99) * 1e3:.2f} ms "
            f"({percentile(loaded, 0.99) / percentile(idle, 0.99):.2f}x idle p99)"
        )
        watching = streams[:subscribers] + listening[:subscribers]
        await fan_out(bus, listeners, "ability", b"tools/list_changed", None, len(listeners), (edge_pid,))
        await fan_out(bus, watching, "resource", b"resources/updated", WATCHED, len(watching))
        others = streams[subscribers:] + listening[subscribers:]
        wrong = sum(b"resources/updated" in listener.arrivals for listener in others)
        print(f"resources/updated at non-subscribers: {wrong}")
        close_streams(listeners)
    finally:
        await bus.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clients", type=int, default=5_000, help="2025-era clients: a session, a GET stream"
    )
    parser.add_argument(
        "--listen", type=int, default=15_000, help="2026-era clients: a subscriptions/listen stream"
    )
    parser.add_argument("--subscribers", type=int, default=100, help="listeners subscribed to one resource")
    parser.add_argument("--calls", type=int, default=2000, help="tools/call per latency sample")
    parser.add_argument(
        "--profile-memory",
        action="store_true",
        help="run the edge under tracemalloc and print what each client allocates, by line",
    )
    args = parser.parse_args()
    clients, listens = args.clients, args.listen
    limit = raise_open_files(clients + listens + 2_000)
    spare = limit - 1_000  # the edge and this generator each need a descriptor per client, and a few more
    if clients + listens > spare:
        clients = min(clients, spare)
        listens = spare - clients
        print(f"open-files hard limit {limit} (not raisable here): {clients + listens} clients measured")
    print(
        f"open-files limit: {limit}; GET streams: {clients}; listen streams: {listens}; "
        f"cores: {os.cpu_count()}"
    )
    state = Path(tempfile.mkdtemp(prefix="skillrelay-scale-"))
    logs = state_folder(state)
    token = secrets.token_urlsafe(24)
    with contextlib.ExitStack() as stack:
        nats_url, env = start_sessions_service(stack, state, logs, "bench_scale")
        start_control_plane(stack, env, logs, nats_url, INTEGRATION_ID, token, "http://127.0.0.1:9/")
        port = free_port()
        environment = edge_env(env, port)
        snapshots = str(state / "edge-heap") if args.profile_memory else None
        if snapshots:
            environment["SKILLRELAY_BENCH_SNAPSHOT"] = snapshots
        module = "benchmarks.traced_edge" if snapshots else "skillrelay_edge"
        edge = stack.enter_context(running([PYTHON, "-m", module], environment, logs / "edge.log"))
        cores = sorted(os.sched_getaffinity(0))
        with contextlib.suppress(OSError):
            os.sched_setaffinity(edge.pid, {cores[0]})  # one edge replica on one core
            if len(cores) > 1:
                os.sched_setaffinity(0, set(cores[1:]))  # the load generator elsewhere
        wait_for_port("127.0.0.1", port, 120, edge)
        wait_http(f"http://127.0.0.1:{port}/ready")
        asyncio.run(
            measure(
                edge.pid, port, token, nats_url, clients, listens, args.subscribers, args.calls, snapshots
            )
        )
    print(f"logs: {logs}")


if __name__ == "__main__":
    main()
