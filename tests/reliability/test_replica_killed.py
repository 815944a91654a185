"""A service process killed (SIGKILL) while a second replica runs: MCP traffic, which needs sessions
(NATS queue group) and auth (static-token checks over NATS), carries on through the survivor; every
request gets a result or a clean error in the meantime."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from skillrelay_devstack.embedded import free_port
from skillrelay_devstack.stack import ServiceProcess, Stack

from .conftest import McpClient, Owner, assert_clean, rpc_body, wait_until_ready

pytestmark = pytest.mark.slow

REQUEST_TIMEOUT = 20.0


async def _wait_for_pong(stack: Stack, service: str, instance_id: str) -> None:
    """The new replica answers on NATS (it subscribed to its queue groups)."""
    from skillrelay_common.messaging import Bus
    from skillrelay_common.schemas.base import Ping, Pong
    from skillrelay_common.subjects import AUTH_PING, SESSIONS_PING

    endpoint = {"sessions": SESSIONS_PING, "auth": AUTH_PING}[service]
    assert stack.nats_url
    bus = await Bus.connect(stack.nats_url, "reliability")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # Queue-grouped: one replica answers each ping; ask until the new one did.
            reply = await bus.request(endpoint, Ping(), timeout=1)
            if isinstance(reply, Pong) and reply.instance_id == instance_id:
                return
        raise AssertionError(f"{instance_id} never answered")
    finally:
        await bus.close()


@pytest.mark.parametrize("service", ["sessions", "auth"])
async def test_killing_one_of_two_replicas(rstack: Stack, service: str) -> None:
    owner = Owner(rstack).create()
    original = next(s for s in rstack.services if s.name == service)
    env = dict(rstack.service_env(), SKILLRELAY_INSTANCE_ID=f"{service}-2")
    if service == "auth":
        env["SKILLRELAY_AUTH_PORT"] = str(free_port())
    second = ServiceProcess(
        f"{service}-2", f"skillrelay_{service}", env, None, rstack._log_file(f"{service}-2")
    )
    second.start()
    outcomes: Counter[str] = Counter()
    after_kill: Counter[str] = Counter()
    killed = asyncio.Event()
    stop = asyncio.Event()
    try:
        await _wait_for_pong(rstack, service, f"{service}-2")

        async def client_loop(index: int, http: httpx.AsyncClient) -> None:
            client = McpClient(http, owner.endpoint(index % 2), owner.token)
            while not stop.is_set():
                try:
                    # A fresh session each round: every round needs the sessions and auth services.
                    response = await client.initialize()
                    if response.status_code == 200:
                        response = await client.call("tools/call", {"name": "hello", "arguments": {}})
                except httpx.TimeoutException:
                    outcomes["client-timeout"] += 1
                    continue
                key = f"http:{response.status_code}"
                if response.status_code == 200:
                    key = "result" if "result" in rpc_body(response) else "rpc-error"
                outcomes[key] += 1
                if killed.is_set():
                    after_kill[key] += 1
                if key != "result":
                    await asyncio.sleep(0.05)

        async with httpx.AsyncClient(timeout=httpx.Timeout(REQUEST_TIMEOUT)) as http:
            tasks = [asyncio.create_task(client_loop(i, http)) for i in range(4)]
            await asyncio.sleep(1.5)
            original.kill()
            killed.set()
            await asyncio.sleep(3.0)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), REQUEST_TIMEOUT + 5)
        print(f"{service}: outcomes={dict(outcomes)} after_kill={dict(after_kill)}")
        assert_clean(outcomes)
        assert after_kill["result"] >= 10, after_kill
    finally:
        original.start()  # put the stack back as it was for the other tests
        await wait_until_ready(rstack)
        second.stop()
