"""``make bench``: one run, same core budget for every server, load from a separate process.

Every server (and NATS, PostgreSQL, the sessions service, the worker), every thread of it, runs on one
CPU and the load generator on another, when the machine has two. All targets are started first; then the load
runs in interleaved rounds (target A, B, C, … then again), so that load from other processes on a
shared machine hits every target alike; the median round is reported. Each request is authenticated
with a static bearer token; the edge's 2025 requests also carry their MCP session, its 2026-07-28
requests (stateless) their per-request ``_meta`` and mirrored headers instead, as do the requests to
the SDK's own 2026-07-28 server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from skillrelay_devstack.edge import initialize_request
from skillrelay_devstack.embedded import EmbeddedNats, EmbeddedPostgres, free_port, wait_for_port

INTEGRATION_ID = "mcpserver_bench"
TEXT = "hello benchmark"
PYTHON = sys.executable
MCP_ACCEPT = "application/json, text/event-stream"
STATIC = "Skillrelay edge, static ability"
HTTP = "Skillrelay edge, http ability (upstream echo)"
MODERN = "2026-07-28"
SDK_2026 = "MCP Python SDK (MCPServer), 2026-07-28 stateless"
EDGE_STATIC, EDGE_WORKER = STATIC, "Skillrelay edge, worker ability"
EDGE_STATIC_2026 = "Skillrelay edge 2026-07-28, static ability"
EDGE_WORKER_2026 = "Skillrelay edge 2026-07-28, worker ability"
SOURCE = "Skillrelay edge, mcp source (SDK upstream)"
UPSTREAM_DIRECT = "SDK upstream called directly, 2026-07-28"
# The same pair again over one connection: latency without queueing (what the edge adds per call).
SOURCE_1 = "Skillrelay edge, mcp source, 1 connection"
UPSTREAM_DIRECT_1 = "SDK upstream called directly, 1 connection"


@dataclass
class Target:
    name: str
    port: int
    path: str
    headers: dict[str, str]
    body: str
    rounds: list[dict[str, float]] = field(default_factory=list)
    concurrency: int | None = None  # None: the run's --concurrency

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.rounds) if self.rounds else 0.0

    @property
    def errors(self) -> int:
        return int(sum(r["errors"] for r in self.rounds))


def _cpus() -> tuple[set[int] | None, set[int] | None]:
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(available) < 2:
        return None, None
    return {available[0]}, {available[1]}


def _pin(pid: int, cpus: set[int] | None) -> None:
    if cpus is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, cpus)


def _pin_all(pids: list[int], cpus: set[int]) -> None:
    """Every thread of ``pids``: affinity set on a process id covers only its main thread."""
    for pid in pids:
        for thread in _threads(pid):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(thread, cpus)


@contextlib.contextmanager
def _affinity(cpus: set[int] | None) -> Iterator[None]:
    """Run this process (and so what it starts) on ``cpus`` for the duration of the block."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _threads(pid: int) -> list[int]:
    try:
        return [int(name) for name in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


def _process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parent = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(name))
    tree: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


@contextlib.contextmanager
def _running(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as handle:
        process = subprocess.Popen(
            args, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # SIGINT: lets a profiler (BENCH_PROFILE_EDGE) write out
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _body(tool: str) -> str:
    params = {"name": tool, "arguments": {"text": TEXT}}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})


def _body_2026(tool: str) -> str:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    params = {"name": tool, "arguments": {"text": TEXT}, "_meta": meta}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})


def _headers_2026(headers: dict[str, str], tool: str) -> dict[str, str]:
    return {**headers, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": tool}


def _measure(target: Target, args: argparse.Namespace, cpus: set[int] | None) -> None:
    spec = {
        "host": "127.0.0.1",
        "port": target.port,
        "path": target.path,
        "headers": target.headers,
        "body": target.body,
        "expect": TEXT,
        "concurrency": target.concurrency or args.concurrency,
        "duration": args.duration,
        "warmup": args.warmup,
    }
    servers = _process_tree(os.getpid())[1:]
    cpu_before = _cpu_seconds(servers)
    process = subprocess.Popen([PYTHON, "-m", "benchmarks.load", json.dumps(spec)], stdout=subprocess.PIPE)
    _pin(process.pid, cpus)
    out, _ = process.communicate(timeout=args.duration + args.warmup + 120)
    data = json.loads(out.decode().strip().splitlines()[-1])
    # CPU of every server process (the whole server core's work) per call, warm-up included: a figure
    # that moves far less with the shared machine's load than req/s does.
    calls = data["requests"] + data.get("warmup_requests", 0)
    data["server_cpu_us"] = (_cpu_seconds(servers) - cpu_before) / calls * 1e6 if calls else 0.0
    target.rounds.append(data)
    print(
        f"  {target.name:<44} {data['rps']:>7.0f} req/s  p50 {data['p50_ms']:6.2f} ms"
        f"  p99 {data['p99_ms']:7.2f} ms  {data['server_cpu_us']:5.0f} µs server CPU/call"
        f"  ({data['requests']} requests, {data['errors']} errors"
        f"{' ' + str(data.get('error_statuses')) if data['errors'] else ''})",
        flush=True,
    )


def _cpu_seconds(pids: list[int]) -> float:
    """User + system time of ``pids`` (their threads included) from /proc."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLRELAY_")}
    env["SKILLRELAY_LOG_LEVEL"] = "warning"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path.cwd()), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


def _initialize(url: str, headers: dict[str, str]) -> str:
    body = initialize_request("bench")
    deadline = time.monotonic() + 30
    while True:
        response = httpx.post(url, headers=headers, json=body, timeout=10)
        if response.status_code == 200:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"initialize failed: {response.status_code} {response.text[:200]}")
        time.sleep(0.2)
    session = response.headers["mcp-session-id"]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    httpx.post(url, headers={**headers, "Mcp-Session-Id": session}, json=initialized).raise_for_status()
    return session


def _has_worker_sdk() -> bool:
    try:
        import skillrelay_worker  # noqa: F401
    except ImportError:
        return False
    return True


def _start_baselines(stack: contextlib.ExitStack, token: str, logs: Path) -> list[Target]:
    headers = {"Content-Type": "application/json", "Accept": MCP_ACCEPT, "Authorization": f"Bearer {token}"}
    targets = []
    for kind, label in (
        ("sdk", "MCP Python SDK (MCPServer, stateless JSON)"),
        ("sdk-lowlevel", "MCP Python SDK (low-level Server, stateless)"),
        ("litestar", "raw Litestar echo"),
    ):
        port = free_port()
        command = [PYTHON, "-m", "benchmarks.echo_servers", kind, str(port), token]
        process = stack.enter_context(_running(command, _env(), logs / f"{kind}.log"))
        wait_for_port("127.0.0.1", port, 30, process)
        targets.append(Target(label, port, "/mcp", headers, _body("echo")))
        if kind == "sdk":
            # The same server, spoken to in 2026-07-28 (it serves both eras).
            sdk_2026 = Target(SDK_2026, port, "/mcp", _headers_2026(headers, "echo"), _body_2026("echo"))
    return [*targets, sdk_2026]


def start_upstream(stack: contextlib.ExitStack, logs: Path) -> str:
    """The upstream echo that http abilities call; started inside ``_affinity(server_cpus)``, so it
    runs on the server CPU too: a gateway and what it calls share one core."""
    port = free_port()
    command = [PYTHON, "-m", "benchmarks.upstream_echo", str(port)]
    upstream = stack.enter_context(_running(command, _env(), logs / "upstream.log"))
    wait_for_port("127.0.0.1", port, 30, upstream)
    return f"http://127.0.0.1:{port}/echo"


def start_mcp_upstream(stack: contextlib.ExitStack, token: str, logs: Path) -> tuple[int, str]:
    """The upstream MCP server of the benchmark's ``mcp`` source: the SDK's ``MCPServer`` echo (the
    same server as the SDK baseline, its own process on the server CPU)."""
    port = free_port()
    command = [PYTHON, "-m", "benchmarks.echo_servers", "sdk", str(port), token]
    process = stack.enter_context(_running(command, _env(), logs / "mcp-upstream.log"))
    wait_for_port("127.0.0.1", port, 30, process)
    return port, f"http://127.0.0.1:{port}/mcp"


def start_edge(
    stack: contextlib.ExitStack,
    token: str,
    state: Path,
    logs: Path,
    upstream_url: str,
    mcp_upstream: tuple[int, str],
) -> list[Target]:
    nats = EmbeddedNats(store_dir=state / "nats")
    nats.start()
    stack.callback(nats.stop)
    postgres = EmbeddedPostgres(data_dir=state / "pg")
    postgres.start()
    stack.callback(postgres.stop)
    database_url = postgres.create_database("bench_sessions")
    env = _env(SKILLRELAY_NATS_URL=nats.url, SKILLRELAY_STATE_DIR=str(state), SKILLRELAY_HOST="127.0.0.1")
    port = free_port()
    edge_env = {
        **env,
        "SKILLRELAY_ALLOW_PRIVATE_HTTP_TARGETS": "true",  # the upstream is on loopback
        "SKILLRELAY_EDGE_PORT": str(port),
        "SKILLRELAY_EDGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    stack.enter_context(
        _running(
            [PYTHON, "-m", "skillrelay_sessions"],
            {**env, "SKILLRELAY_DATABASE_URL": database_url},
            logs / "sessions.log",
        )
    )
    mcp_port, mcp_url = mcp_upstream
    control = [
        PYTHON,
        "-m",
        "benchmarks.control_plane",
        nats.url,
        INTEGRATION_ID,
        token,
        upstream_url,
        mcp_url,
    ]
    stack.enter_context(_running(control, env, logs / "control.log"))
    worker = _has_worker_sdk()
    if worker:
        worker_command = [PYTHON, "-m", "benchmarks.echo_worker", nats.url]
        if os.environ.get("BENCH_PROFILE_WORKER"):  # developer aid: cProfile the worker process
            worker_command[1:1] = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE_WORKER"]]
        stack.enter_context(_running(worker_command, env, logs / "worker.log"))
    edge_command = [PYTHON, "-m", "skillrelay_edge"]
    if os.environ.get("BENCH_PROFILE_EDGE"):  # developer aid: cProfile the edge process
        edge_command = [
            PYTHON,
            "-m",
            "cProfile",
            "-o",
            os.environ["BENCH_PROFILE_EDGE"],
            "-m",
            "skillrelay_edge",
        ]
    edge = stack.enter_context(_running(edge_command, edge_env, logs / "edge.log"))
    wait_for_port("127.0.0.1", port, 30, edge)
    _wait_http(f"http://127.0.0.1:{port}/ready")
    path = f"/api/v1/integration/mcpserver/{INTEGRATION_ID}/mcp"
    headers = {"Content-Type": "application/json", "Accept": MCP_ACCEPT, "Authorization": f"Bearer {token}"}
    session = _initialize(f"http://127.0.0.1:{port}{path}", headers)
    call_headers = {**headers, "Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
    targets = [
        Target(STATIC, port, path, call_headers, _body("echo")),
        # 2026-07-28: no session, the client's _meta and the mirrored headers on every request.
        Target(EDGE_STATIC_2026, port, path, _headers_2026(headers, "echo"), _body_2026("echo")),
        Target(HTTP, port, path, call_headers, _body("echo_http")),
        # An mcp source: the edge forwards to the SDK upstream (which it speaks 2026-07-28 to) beside
        # the same upstream called directly in that era, under load and over one connection.
        Target(SOURCE, port, path, call_headers, _body("echo_source")),
        Target(UPSTREAM_DIRECT, mcp_port, "/mcp", _headers_2026(headers, "echo"), _body_2026("echo")),
        Target(SOURCE_1, port, path, call_headers, _body("echo_source"), concurrency=1),
        Target(
            UPSTREAM_DIRECT_1,
            mcp_port,
            "/mcp",
            _headers_2026(headers, "echo"),
            _body_2026("echo"),
            concurrency=1,
        ),
    ]
    if worker:
        targets.append(Target(EDGE_WORKER, port, path, call_headers, _body("echo_worker")))
        targets.append(
            Target(
                EDGE_WORKER_2026, port, path, _headers_2026(headers, "echo_worker"), _body_2026("echo_worker")
            )
        )
    else:
        print("worker SDK not available: the worker ability is not measured")
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds measured per target and round")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per target and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--only-edge", action="store_true", help="skip the baselines (developer aid)")
    args = parser.parse_args()
    server_cpus, load_cpus = _cpus()
    token = "bench-" + secrets.token_urlsafe(24)
    where = (
        f"servers on CPU {sorted(server_cpus)}, load on CPU {sorted(load_cpus or ())}"
        if server_cpus
        else "no pinning"
    )
    print(
        f"{where}; {args.concurrency} connections; {args.rounds} rounds of "
        f"{args.warmup:g} s warm-up + {args.duration:g} s per target",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="skillrelay-bench-") as tmp, contextlib.ExitStack() as stack:
        state = Path(tmp)
        os.chmod(state, 0o755)  # noqa: S103 (embedded PostgreSQL may run as another user)
        logs = state / "logs"
        logs.mkdir()
        with _affinity(server_cpus):
            # Servers inherit the server CPU from their first instruction: a Go runtime (nats-server)
            # sizes its scheduler by the CPUs it sees at start; pinned later, it would keep two.
            targets = [] if args.only_edge else _start_baselines(stack, token, logs)
            upstreams = start_upstream(stack, logs), start_mcp_upstream(stack, token, logs)
            targets += start_edge(stack, token, state, logs, *upstreams)
        # Once everything runs: whatever the servers started since (threads, backends) on their CPU too.
        if server_cpus is not None:
            _pin_all(_process_tree(os.getpid())[1:], server_cpus)
        for number in range(1, args.rounds + 1):
            print(f"round {number}", flush=True)
            for target in targets:
                _measure(target, args, load_cpus)
    _report(targets)


def _report(targets: list[Target]) -> None:
    sdk = (targets[0].median("rps") if targets else 0.0) or 1.0
    print("\nmedian of the rounds:\n")
    print("| target | req/s | p50 ms | p99 ms | server CPU µs/call | vs SDK |")
    print("|---|---:|---:|---:|---:|---:|")
    for target in targets:
        rps = target.median("rps")
        print(
            f"| {target.name} | {rps:.0f} | {target.median('p50_ms'):.2f} | "
            f"{target.median('p99_ms'):.2f} | {target.median('server_cpu_us'):.0f} | {rps / sdk:.1f}x |"
        )
    by_name = {target.name: target for target in targets}
    if STATIC in by_name and HTTP in by_name:
        static, http = by_name[STATIC], by_name[HTTP]
        rate = http.median("rps") / (static.median("rps") or 1.0)
        p99 = http.median("p99_ms") / (static.median("p99_ms") or 1.0)
        print(
            f"\nhttp ability vs static: {rate:.0%} of its req/s, p99 {p99:.2f}x its p99 (aim: >= 50 %, <= 2x)"
        )
        per_round = ", ".join(
            f"{h['rps'] / (s['rps'] or 1.0):.0%} / {h['p99_ms'] / (s['p99_ms'] or 1.0):.2f}x"
            for h, s in zip(http.rounds, static.rounds, strict=True)
        )
        print(f"per round (share of req/s / p99 ratio): {per_round}")
    rps_of = {target.name: target.median("rps") for target in targets}
    sdk_2026 = rps_of.get(SDK_2026)
    if sdk_2026:
        print("\n2026-07-28 (stateless), against the SDK's own 2026-07-28 server:")
        for name in (EDGE_STATIC_2026, EDGE_WORKER_2026):
            if name in rps_of:
                print(f"  {name}: {rps_of[name] / sdk_2026:.1f}x")
    if rps_of.get(EDGE_STATIC) and EDGE_STATIC_2026 in rps_of:
        ratio = rps_of[EDGE_STATIC_2026] / rps_of[EDGE_STATIC]
        print(f"  edge static, 2026-07-28 vs 2025 (session-bound): {ratio:.2f}x")
    if SOURCE_1 in by_name and UPSTREAM_DIRECT_1 in by_name:
        added = by_name[SOURCE_1].median("p50_ms") - by_name[UPSTREAM_DIRECT_1].median("p50_ms")
        loaded = by_name[SOURCE].median("rps") / (by_name[UPSTREAM_DIRECT].median("rps") or 1.0)
        print(
            f"\nmcp source: the edge adds {added:.2f} ms at p50 over one connection (aim: <= 1 ms); "
            f"under load {loaded:.0%} of the upstream's own req/s (they share one CPU)"
        )
    errors = sum(target.errors for target in targets)
    if errors:
        print(f"\n{errors} requests failed: the figures above are not trustworthy")


if __name__ == "__main__":
    main()
