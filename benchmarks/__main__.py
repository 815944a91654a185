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
import time
from pathlib import Path

import httpx

from benchmarks.harness import (
    PYTHON,
    TEXT,
    Target,
    add_round_options,
    affinity,
    bench_env,
    bench_run,
    edge_env,
    print_errors,
    print_medians,
    running,
    start_control_plane,
    start_sessions_service,
    wait_http,
)
from skillrelay_devstack.embedded import free_port, wait_for_port
from skillrelay_devstack.raw_mcp import initialize_request

INTEGRATION_ID = "mcpserver_bench"
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
        process = stack.enter_context(running(command, bench_env(), logs / f"{kind}.log"))
        wait_for_port("127.0.0.1", port, 30, process)
        targets.append(Target(label, port, "/mcp", headers, _body("echo")))
        if kind == "sdk":
            # The same server, spoken to in 2026-07-28 (it serves both eras).
            sdk_2026 = Target(SDK_2026, port, "/mcp", _headers_2026(headers, "echo"), _body_2026("echo"))
    return [*targets, sdk_2026]


def start_upstream(stack: contextlib.ExitStack, logs: Path) -> str:
    """The upstream echo that http abilities call; started inside ``affinity(server_cpus)``, so it
    runs on the server CPU too: a gateway and what it calls share one core."""
    port = free_port()
    command = [PYTHON, "-m", "benchmarks.upstream_echo", str(port)]
    upstream = stack.enter_context(running(command, bench_env(), logs / "upstream.log"))
    wait_for_port("127.0.0.1", port, 30, upstream)
    return f"http://127.0.0.1:{port}/echo"


def start_mcp_upstream(stack: contextlib.ExitStack, token: str, logs: Path) -> tuple[int, str]:
    """The upstream MCP server of the benchmark's ``mcp`` source: the SDK's ``MCPServer`` echo (the
    same server as the SDK baseline, its own process on the server CPU)."""
    port = free_port()
    command = [PYTHON, "-m", "benchmarks.echo_servers", "sdk", str(port), token]
    process = stack.enter_context(running(command, bench_env(), logs / "mcp-upstream.log"))
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
    nats_url, env = start_sessions_service(stack, state, logs, "bench_sessions")
    port = free_port()
    edge_environment = {
        **edge_env(env, port),
        "SKILLRELAY_ALLOW_PRIVATE_HTTP_TARGETS": "true",  # the upstream is on loopback
    }
    mcp_port, mcp_url = mcp_upstream
    start_control_plane(stack, env, logs, nats_url, INTEGRATION_ID, token, upstream_url, mcp_url)
    worker = _has_worker_sdk()
    if worker:
        worker_command = [PYTHON, "-m", "benchmarks.echo_worker", nats_url]
        if os.environ.get("BENCH_PROFILE_WORKER"):  # developer aid: cProfile the worker process
            worker_command[1:1] = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE_WORKER"]]
        stack.enter_context(running(worker_command, env, logs / "worker.log"))
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
    edge = stack.enter_context(running(edge_command, edge_environment, logs / "edge.log"))
    wait_for_port("127.0.0.1", port, 30, edge)
    wait_http(f"http://127.0.0.1:{port}/ready")
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
    add_round_options(parser, duration=4.0, warmup=1.0)
    parser.add_argument("--only-edge", action="store_true", help="skip the baselines (developer aid)")
    args = parser.parse_args()
    with bench_run(args, "skillrelay-bench-") as run:
        with affinity(run.server_cpus):
            # Servers inherit the server CPU from their first instruction: a Go runtime (nats-server)
            # sizes its scheduler by the CPUs it sees at start; pinned later, it would keep two.
            targets = [] if args.only_edge else _start_baselines(run.stack, run.token, run.logs)
            upstreams = (
                start_upstream(run.stack, run.logs),
                start_mcp_upstream(run.stack, run.token, run.logs),
            )
            targets += start_edge(run.stack, run.token, run.state, run.logs, *upstreams)
        run.rounds(targets, args)
    _report(targets)


def _report(targets: list[Target]) -> None:
    sdk = (targets[0].median("rps") if targets else 0.0) or 1.0
    print_medians(targets, ("vs SDK", lambda target: f"{target.median('rps') / sdk:.1f}x"))
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
    print_errors(targets)


if __name__ == "__main__":
    main()
