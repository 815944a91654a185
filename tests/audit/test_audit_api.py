"""``GET /api/v1/integration/mcpserver/{id}/audit/list`` over the real AUDIT stream (owner lookup faked:
the registry's own lookup is tested by the registry; the whole route runs in e2e)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request
from litestar.di import Provide

from skillrelay_common.audit import AuditRecorder
from skillrelay_common.http import EXCEPTION_HANDLERS, ApiError
from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import AUDIT_STREAM
from skillrelay_registry.api_audit import audit_routes


class FakeRegistry:
    def __init__(self, owned: dict[str, str]) -> None:
        self.owned = owned

    async def get_integration(self, owner_id: str, integration_id: str) -> dict[str, str]:
        if self.owned.get(integration_id) != owner_id:
            raise ApiError(404, "not_found", "integration not found")
        return {"id": integration_id}


@pytest.fixture
async def setup(bus: Bus) -> AsyncIterator[tuple[httpx.AsyncClient, AuditRecorder, str, str]]:
    mine, theirs = f"mcpserver_m{uuid.uuid4().hex[:8]}", f"mcpserver_t{uuid.uuid4().hex[:8]}"
    # The real AUDIT stream (audit.>): a private stream for these subjects would overlap it once any
    # earlier test created it on the session's NATS. Fresh integration ids keep the records apart.
    stream = AUDIT_STREAM
    audit = AuditRecorder(bus, "test", stream=stream)
    await audit.start()
    registry = FakeRegistry({mine: "user_me", theirs: "user_other"})

    def owner(request: Request[Any, Any, Any]) -> str:
        if request.headers.get("authorization") != "Bearer key-me":
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <API key>")
        return "user_me"

    app = Litestar(
        route_handlers=audit_routes(
            lambda: bus,
            dependencies={
                "service": Provide(lambda: registry, sync_to_thread=False),
                "owner_id": Provide(owner, sync_to_thread=False),
            },
            stream_name=stream.name,
        ),
        exception_handlers=EXCEPTION_HANDLERS,
    )
    # In this event loop (the bus lives here), unlike litestar's test client.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
        yield client, audit, mine, theirs
    await audit.stop()


async def test_pages_through_own_records_only(
    setup: tuple[httpx.AsyncClient, AuditRecorder, str, str],
) -> None:
    client, audit, mine, theirs = setup
    for index in range(5):
        audit.record("tool.call", mine, outcome="ok", latency_ms=1.0, data={"n": index, "token": "x"})
        audit.record("mcp.request", theirs, outcome="ok")
    audit.record("auth.failure", mine, outcome="denied", data={"reason": "unknown token"})
    await asyncio.wait_for(audit.flush(), 10)
    headers = {"Authorization": "Bearer key-me"}
    url = f"/api/v1/integration/mcpserver/{mine}/audit/list"

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"take": "2", **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        seen.extend(body["items"])
        cursor = body.get("cursor")
        if cursor is None:
            break
    assert [item["data"]["kind"] for item in seen] == ["tool.call"] * 5 + ["auth.failure"]
    assert {item["subject"] for item in seen} == {mine}
    assert seen[0]["specversion"] == "1.0" and seen[0]["data"]["details"] == {"n": 0, "token": "[redacted]"}

    only = await client.get(url, params={"kind": "auth.failure"}, headers=headers)
    assert [item["data"]["kind"] for item in only.json()["items"]] == ["auth.failure"]


async def test_errors_are_4xx(setup: tuple[httpx.AsyncClient, AuditRecorder, str, str]) -> None:
    client, _, mine, theirs = setup
    headers = {"Authorization": "Bearer key-me"}
    other = await client.get(f"/api/v1/integration/mcpserver/{theirs}/audit/list", headers=headers)
    assert other.status_code == 404 and other.json()["code"] == "not_found"
    anonymous = await client.get(f"/api/v1/integration/mcpserver/{mine}/audit/list")
    assert anonymous.status_code == 401
    for params in ({"cursor": "abc"}, {"cursor": "0"}, {"take": "0"}, {"take": "101"}, {"kind": "nope"}):
        response = await client.get(
            f"/api/v1/integration/mcpserver/{mine}/audit/list", params=params, headers=headers
        )
        assert response.status_code == 400, (params, response.text)
