"""``make bench-peers``: our ``http`` ability beside IBM ContextForge's REST tool, both calling the same
upstream echo, with the harness of ``make bench`` (every server thread on one CPU, the load generator
on the other, interleaved rounds, median reported).

    python -m benchmarks.peers --contextforge .peers/contextforge/bin/mcpgateway

ContextForge runs as its documentation describes for production (``ENVIRONMENT=production``, strong
generated secrets, authentication on), in one process; every setting and why is in docs/outbound.md.
Its state (SQLite) lives in a temporary folder; all traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import time
from pathlib import Path

import httpx

from benchmarks.__main__ import HTTP, start_edge, start_mcp_upstream, start_upstream
from benchmarks.harness import (
    TEXT,
    Target,
    add_round_options,
    affinity,
    bench_run,
    print_errors,
    print_medians,
    running,
)
from skillrelay_devstack.embedded import free_port, wait_for_port

CONTEXTFORGE = "IBM ContextForge 1.1.0, REST tool"
ADMIN_EMAIL = "admin@bench.example.com"
ECHO_SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


def contextforge_env(port: int, state: Path) -> dict[str, str]:
    """Production settings (see docs/outbound.md for each)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKILLRELAY_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(
        ENVIRONMENT="production",
        HOST="127.0.0.1",
        PORT=str(port),
        APP_DOMAIN=f"http://127.0.0.1:{port}",
        DATABASE_URL=f"sqlite:///{state / 'contextforge.db'}",
        CACHE_TYPE="memory",  # one process, no Redis: the fastest cache it offers
        AUTH_REQUIRED="true",
        JWT_SECRET_KEY=secrets.token_urlsafe(48),
        AUTH_ENCRYPTION_SECRET=secrets.token_urlsafe(48),
        PLATFORM_ADMIN_EMAIL=ADMIN_EMAIL,
        PLATFORM_ADMIN_PASSWORD="Pa-" + secrets.token_urlsafe(24),
        DEFAULT_USER_PASSWORD="Du-" + secrets.token_urlsafe(24),
        BASIC_AUTH_USER="benchadmin",
        BASIC_AUTH_PASSWORD="Ba-" + secrets.token_urlsafe(24),
        MCPGATEWAY_UI_ENABLED="false",
        MCPGATEWAY_ADMIN_API_ENABLED="false",
        LOG_LEVEL="ERROR",
        SSRF_ALLOW_LOCALHOST="true",  # the upstream is on loopback (ours: allow_private_http_targets)
        # Its per-client limit (100 MCP/tool requests a minute) would answer 429 to a throughput test;
        # ours has no such limit on the MCP path. Capacity, not policy, is measured.
        RATE_LIMITING_ENABLED="false",
        TOOL_RATE_LIMIT="1000000",
    )
    return env


def start_contextforge(
    stack: contextlib.ExitStack, executable: str, upstream_url: str, state: Path, logs: Path
) -> Target:
    port = free_port()
    env = contextforge_env(port, state)
    command = [executable, "--host", "127.0.0.1", "--port", str(port)]
    process = stack.enter_context(running(command, env, logs / "contextforge.log"))
    wait_for_port("127.0.0.1", port, 600, process)  # first start: migrations, role bootstrap
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=10).status_code == 200:
                break
        if time.monotonic() > deadline:
            raise RuntimeError("ContextForge did not become healthy")
        time.sleep(0.5)
    login = httpx.post(
        f"{base}/v1/auth/email/login",
        json={"email": ADMIN_EMAIL, "password": env["PLATFORM_ADMIN_PASSWORD"]},
        timeout=60,
    )
    login.raise_for_status()
    token = login.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    tool = {
        "name": "echo",
        "url": upstream_url,
        "integration_type": "REST",
        "request_type": "POST",
        "input_schema": ECHO_SCHEMA,
    }
    created = httpx.post(f"{base}/tools", headers=headers, json={"tool": tool}, timeout=60)
    created.raise_for_status()
    call_headers = {
        **headers,
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
    }
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": TEXT}},
        }
    )
    return Target(CONTEXTFORGE, port, "/mcp/", call_headers, body)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers")
    parser.add_argument("--contextforge", required=True, help="the mcpgateway executable of its venv")
    add_round_options(parser, duration=8.0, warmup=2.0)
    args = parser.parse_args()
    with bench_run(args, "skillrelay-peers-") as run:
        with affinity(run.server_cpus):
            upstream_url = start_upstream(run.stack, run.logs)
            upstreams = upstream_url, start_mcp_upstream(run.stack, run.token, run.logs)
            ours = [
                t for t in start_edge(run.stack, run.token, run.state, run.logs, *upstreams) if t.name == HTTP
            ]
            peer = start_contextforge(run.stack, args.contextforge, upstream_url, run.state, run.logs)
        targets = [*ours, peer]
        run.rounds(targets, args)
    print_medians(targets)
    ratios = [a["rps"] / (b["rps"] or 1.0) for a, b in zip(ours[0].rounds, peer.rounds, strict=True)]
    print(
        f"\nours / ContextForge req/s per round: {', '.join(f'{r:.0f}x' for r in ratios)}; "
        f"median {ours[0].median('rps') / (peer.median('rps') or 1.0):.0f}x (aim: >= 50x)"
    )
    print_errors(targets)


if __name__ == "__main__":
    main()
