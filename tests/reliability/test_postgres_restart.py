"""PostgreSQL killed (SIGKILL) and restarted while owners write through the REST API: every write that
was acknowledged (200 with an id) is there afterwards, every other attempt got a clean answer (503 or
4xx, never a hang or a 500), and writes succeed again once the database is back."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from skillrelay_devstack.stack import Stack

from .conftest import Owner, assert_clean, timed, wait_until_ready

pytestmark = pytest.mark.slow

WRITERS = 4
REQUEST_TIMEOUT = 20.0


async def test_postgres_crash_under_writes(rstack: Stack) -> None:
    assert rstack.postgres is not None
    owner = Owner(rstack).create()
    acknowledged: list[str] = []
    outcomes: Counter[str] = Counter()
    stop = asyncio.Event()
    restarted = asyncio.Event()
    ok_after_restart = asyncio.Event()
    slowest = 0.0

    async def writer(index: int, registry: httpx.AsyncClient) -> None:
        nonlocal slowest
        sequence = 0
        while not stop.is_set():
            sequence += 1
            body = {"name": f"w{index}-{sequence}", "description": "rel"}
            answer = await timed(outcomes, registry.post("/api/v1/skillset/create", json=body))
            if answer is None:
                continue
            response, seconds = answer
            slowest = max(slowest, seconds)
            outcomes[f"http:{response.status_code}"] += 1
            if response.status_code == 200:
                acknowledged.append(response.json()["id"])
                if restarted.is_set():
                    ok_after_restart.set()
            else:
                await asyncio.sleep(0.05)

    async with httpx.AsyncClient(
        base_url=rstack.registry_url, headers=owner.headers, timeout=httpx.Timeout(REQUEST_TIMEOUT)
    ) as registry:
        tasks = [asyncio.create_task(writer(i, registry)) for i in range(WRITERS)]
        await asyncio.sleep(1.5)
        assert acknowledged, outcomes
        before_crash = len(acknowledged)
        await asyncio.to_thread(rstack.postgres.kill)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(rstack.postgres.start)
        restarted.set()
        await asyncio.wait_for(ok_after_restart.wait(), 60)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), REQUEST_TIMEOUT + 5)

        missing = []
        for skillset_id in acknowledged:
            fetched = await registry.get(f"/api/v1/skillset/{skillset_id}/fetch")
            if fetched.status_code != 200:
                missing.append((skillset_id, fetched.status_code))
    print(
        f"outcomes={dict(outcomes)} acknowledged={len(acknowledged)} before_crash={before_crash} "
        f"slowest={slowest:.2f}s"
    )
    assert not missing, f"acknowledged writes missing after the restart: {missing[:5]}"
    assert_clean(outcomes)
    await wait_until_ready(rstack)
