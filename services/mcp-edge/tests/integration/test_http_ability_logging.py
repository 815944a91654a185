"""The edge as a real process (``python -m skillrelay_edge``) honours ``SKILLRELAY_LOG_LEVEL`` on the
``http`` ability's path: at ``warning`` a call writes no line at all (httpx's INFO ``HTTP Request``
line used to slip through Litestar's logging config); at ``debug`` the same call writes its outbound
line, so the capture below does see what the process writes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest

from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import AUTH_JWKS_GET, AUTH_TOKEN_VERIFY, REGISTRY_INTEGRATION_RESOLVE
from skillrelay_devstack.edge import TOKEN, ControlPlane, ability, demo_skillset, initialize_request
from skillrelay_devstack.embedded import free_port
from skillrelay_devstack.sessions import ManualClock, running_sessions

INTEGRATION = "mcpserver_logging"
HEADERS = {"accept": "application/json, text/event-stream", "authorization": f"Bearer {TOKEN}"}


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            body = await reader.readexactly(length) if length else b"{}"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def fakes(nats_url: str) -> AsyncIterator[str]:
    """An upstream echo and the registry/auth stand-ins; yields the upstream's URL."""
    upstream = await asyncio.start_server(_echo, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{upstream.sockets[0].getsockname()[1]}/echo"
    skillset = demo_skillset("skillset_logging")
    tool = ability("relay", {"type": "http", "url": url})
    control = ControlPlane()
    control.add(INTEGRATION, msgspec.structs.replace(skillset, abilities=[*skillset.abilities, tool]))
    bus = await Bus.connect(nats_url, "fakes")
    bus.serve(REGISTRY_INTEGRATION_RESOLVE, control.resolve)
    bus.serve(AUTH_TOKEN_VERIFY, control.verify)
    bus.serve(AUTH_JWKS_GET, control.jwks)
    await bus.start()
    try:
        yield url
    finally:
        await bus.close()
        upstream.close()


async def _ready(client: httpx.AsyncClient, url: str, process: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(60):
        while True:
            assert process.returncode is None, "the edge exited"
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("level", ["warning", "debug"])
async def test_an_http_call_at_warning_writes_no_log_line(
    level: str, nats_url: str, database_url: str, fakes: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SKILLRELAY_")}
    env.update(
        SKILLRELAY_LOG_LEVEL=level,
        SKILLRELAY_NATS_URL=nats_url,
        SKILLRELAY_EDGE_PORT=str(port),
        SKILLRELAY_EDGE_PUBLIC_URL=f"http://127.0.0.1:{port}",
        SKILLRELAY_ALLOW_PRIVATE_HTTP_TARGETS="true",
        SKILLRELAY_STATE_DIR=str(tmp_path / "state"),
    )
    output = tmp_path / "edge.log"
    async with running_sessions(nats_url, database_url, ManualClock(time.time())):
        with output.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "skillrelay_edge", env=env, stdout=sink, stderr=subprocess.STDOUT
            )
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                await _ready(client, f"http://127.0.0.1:{port}/ready", process)
                mcp = f"http://127.0.0.1:{port}/api/v1/integration/mcpserver/{INTEGRATION}/mcp"
                opened = await client.post(mcp, headers=HEADERS, json=initialize_request())
                assert opened.status_code == 200, opened.text
                session = {**HEADERS, "mcp-session-id": opened.headers["mcp-session-id"]}
                before = output.stat().st_size
                call = {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": "relay", "arguments": {"text": "quiet please"}},
                }
                answer = await client.post(mcp, headers=session, json=call)
                assert answer.status_code == 200 and "quiet please" in answer.text, answer.text
        finally:
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                await process.wait()
    # Read once the process is gone: a logging thread (a queue listener) may write after the answer.
    written = output.read_bytes()[before:].decode()
    if level == "warning":
        assert written == ""
    else:
        assert "outbound.answer" in written and "HTTP Request" not in written
