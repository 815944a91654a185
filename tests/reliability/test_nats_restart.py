"""NATS killed (SIGKILL) and restarted under load: every in-flight MCP request ends with a result or a
clean error within its timeout, traffic recovers, and no audit record stored before the crash is lost
(JetStream runs with sync_interval: always)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from skillrelay_common.audit import read_records
from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import AUDIT_STREAM, audit_filter
from skillrelay_devstack.stack import Stack

from .conftest import McpClient, Owner, assert_clean, rpc_body, timed, wait_until_ready

pytestmark = pytest.mark.slow

CLIENTS = 4
REQUEST_TIMEOUT = 20.0  # the client's patience; every answer must come well within it


async def _stored_audit_ids(nats_url: str, integration_id: str) -> set[str]:
    bus = await Bus.connect(nats_url, "reliability")
    bus.js = bus.nc.jetstream(timeout=15)  # patient: the machine may be busy
    try:
        # Up to what is stored now: the edge keeps auditing every call while we read.
        last = (await bus.js.stream_info(AUDIT_STREAM.name)).state.last_seq
        items, _ = await read_records(bus, audit_filter(integration_id), limit=1_000_000, end=last)
        return {record.id for _, record in items}
    finally:
        await bus.close()


async def test_nats_crash_under_load(rstack: Stack) -> None:
    assert rstack.nats is not None and rstack.nats_url
    owner = Owner(rstack).create()
    outcomes: Counter[str] = Counter()
    slowest = 0.0
    stop = asyncio.Event()
    crashed_at: list[float] = []
    ok_after_restart: dict[int, int] = {}
    all_recovered = asyncio.Event()
    before_ids: list[set[str]] = []

    async def client_loop(index: int, http: httpx.AsyncClient) -> None:
        nonlocal slowest
        client = McpClient(http, owner.endpoint(index % 2), owner.token)
        while not stop.is_set():
            answer = await timed(outcomes, client.call("tools/call", {"name": "hello", "arguments": {}}))
            if answer is None:
                continue
            response, seconds = answer
            slowest = max(slowest, seconds)
            status = response.status_code
            if status == 200:
                body = rpc_body(response)
                key = "result" if "result" in body else f"rpc-error:{body['error']['code']}"
                outcomes[key] += 1
                if key != "result":
                    await asyncio.sleep(0.05)
                if (
                    key == "result"
                    and crashed_at
                    and rstack.nats.process
                    and rstack.nats.process.poll() is None
                ):
                    ok_after_restart[index] = ok_after_restart.get(index, 0) + 1
                    if len([n for n in ok_after_restart.values() if n >= 3]) == CLIENTS:
                        all_recovered.set()
            else:
                outcomes[f"http:{status}"] += 1
                await asyncio.sleep(0.05)  # a clean refusal: back off a little, as a client would

    async with httpx.AsyncClient(timeout=httpx.Timeout(REQUEST_TIMEOUT)) as http:
        # Sessions opened before the crash are audited (session.opened) by the sessions service.
        warm = [McpClient(http, owner.endpoint(i % 2), owner.token) for i in range(3)]
        for client in warm:
            assert (await client.initialize()).status_code == 200
        tasks = [asyncio.create_task(client_loop(i, http)) for i in range(CLIENTS)]
        try:
            recovery = await _crash_and_recover(
                rstack, owner, outcomes, crashed_at, all_recovered, before_ids
            )
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), REQUEST_TIMEOUT + 5)

    before = before_ids[0]
    after = await _stored_audit_ids(rstack.nats_url, owner.integration_id)
    print(f"outcomes={dict(outcomes)} slowest={slowest:.2f}s recovered_after={recovery:.1f}s")
    assert before <= after, f"{len(before - after)} stored audit records lost"
    assert slowest < REQUEST_TIMEOUT
    assert_clean(outcomes)
    await wait_until_ready(rstack)


async def _crash_and_recover(
    rstack: Stack,
    owner: Owner,
    outcomes: Counter[str],
    crashed_at: list[float],
    all_recovered: asyncio.Event,
    before_ids: list[set[str]],
) -> float:
    assert rstack.nats is not None and rstack.nats_url
    await asyncio.sleep(2.0)  # load running
    assert outcomes["result"] > 0, outcomes
    before_ids.append(await _stored_audit_ids(rstack.nats_url, owner.integration_id))
    assert before_ids[0], "the sessions opened so far should be audited"
    rstack.nats.kill()  # a crash, not a graceful stop
    crashed_at.append(time.monotonic())
    await asyncio.sleep(2.0)  # the stack without NATS, under load
    await asyncio.to_thread(rstack.nats.start)  # same port, same store folder
    await asyncio.wait_for(all_recovered.wait(), 60)
    return time.monotonic() - crashed_at[0]
