"""Worker subjects are owner-scoped, end to end: REST at the registry, the edge as a process, workers
connected with their owners' worker credentials through the real auth callout. Two owners use the same
subject name and never reach each other's workers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from skillrelay_devstack.raw_mcp import initialize_request
from skillrelay_devstack.stack import Stack
from skillrelay_worker import Worker, WorkerContext

pytestmark = pytest.mark.slow

ACCEPT = "application/json, text/event-stream"
SUBJECT = "shared-name"


class Owner:
    """An owner with a skillset whose tool ``whoami`` is served by the worker subject ``shared-name``."""

    def __init__(self, stack: Stack, name: str) -> None:
        self.registry = httpx.AsyncClient(base_url=stack.registry_url, timeout=30)
        self.stack = stack
        self.name = name

    async def create(self) -> None:
        user = await self.registry.post(
            "/api/v1/user/create",
            json={"name": self.name},
            headers={"authorization": f"Bearer {self.stack.admin_token}"},
        )
        assert user.status_code in (200, 201), user.text
        self.id = user.json()["id"]
        self.registry.headers["authorization"] = f"Bearer {user.json()['apiKey']}"
        skillset = await self.post("/api/v1/skillset/create", {"name": self.name, "description": "d"})
        await self.post(
            f"/api/v1/skillset/{skillset['id']}/ability/create",
            {
                "name": "whoami",
                "description": "Which worker answers",
                "inputSchema": {"type": "object"},
                "handler": {"type": "worker", "subject": SUBJECT, "timeoutMs": 5000},
            },
        )
        integration = await self.post(
            "/api/v1/integration/mcpserver/create",
            {"name": self.name, "description": "d", "skillsetId": skillset["id"]},
        )
        self.integration_id = integration["id"]
        self.endpoint = integration["endpoint"]
        self.token = integration["accessToken"]
        self.credential = (await self.post("/api/v1/worker/credential/create", {"name": "w"}))["credential"]

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        response = await self.registry.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    async def call_whoami(self) -> dict[str, Any]:
        headers = {
            "accept": ACCEPT,
            "content-type": "application/json",
            "authorization": f"Bearer {self.token}",
        }
        async with httpx.AsyncClient(timeout=30) as client:
            init = await client.post(
                self.endpoint,
                headers=headers,
                json=initialize_request("e2e"),
            )
            assert init.status_code == 200, init.text
            session = {"mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
            answer = await client.post(
                self.endpoint,
                headers=headers | session,
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": "whoami", "arguments": {}},
                },
            )
            assert answer.status_code == 200, answer.text
            return _message(answer)


def _message(response: httpx.Response) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                message = json.loads(line[5:])
                if "id" in message:
                    return dict(message)
        raise AssertionError(response.text)
    return dict(response.json())


def whoami_worker(label: str, credential: str, seen: list[str]) -> Worker:
    worker = Worker(SUBJECT, credential=credential, shutdown_grace=1.0)

    @worker.tool("whoami")
    async def whoami(ctx: WorkerContext, args: dict[str, Any]) -> str:
        seen.append(ctx.integration_id)
        return label

    return worker


def _text(message: dict[str, Any]) -> str:
    return str(message["result"]["content"][0]["text"])


async def test_owners_with_the_same_subject_never_reach_each_others_workers(
    stack: Stack, nats_plain_url: str
) -> None:
    alice, bob = Owner(stack, "alice"), Owner(stack, "bob")
    await asyncio.gather(alice.create(), bob.create())
    seen_by_alice: list[str] = []
    alices = whoami_worker("alice's worker", alice.credential, seen_by_alice)
    await alices.start(nats_plain_url)
    try:
        assert _text(await alice.call_whoami()) == "alice's worker"
        # Bob's ability names the same subject, but under Bob's namespace nobody serves it.
        refused = await bob.call_whoami()
        assert "error" in refused or refused["result"].get("isError"), refused
        assert "alice" not in json.dumps(refused)
        assert seen_by_alice == [alice.integration_id]

        seen_by_bob: list[str] = []
        bobs = whoami_worker("bob's worker", bob.credential, seen_by_bob)
        await bobs.start(nats_plain_url)
        try:
            for _ in range(3):
                assert _text(await bob.call_whoami()) == "bob's worker"
                assert _text(await alice.call_whoami()) == "alice's worker"
            assert set(seen_by_bob) == {bob.integration_id}
            assert set(seen_by_alice) == {alice.integration_id}
        finally:
            await bobs.stop()
    finally:
        await alices.stop()
        await alice.registry.aclose()
        await bob.registry.aclose()
