"""The registry's integration lifecycle through the whole stack (real auth, sessions and edge as
processes): the token from create works at the edge, rotate ends the old token at once, delete ends
the integration, its token and its sessions."""

from __future__ import annotations

import uuid

import httpx
import pytest

from skillrelay_devstack.raw_mcp import initialize_request
from skillrelay_devstack.stack import Stack

pytestmark = pytest.mark.slow

ACCEPT = "application/json, text/event-stream"
INIT = initialize_request("e2e")


def _initialize(endpoint: str, token: str) -> httpx.Response:
    return httpx.post(
        endpoint,
        json=INIT,
        headers={"authorization": f"Bearer {token}", "accept": ACCEPT, "content-type": "application/json"},
        timeout=10,
    )


def test_create_rotate_delete_through_the_real_stack(stack: Stack) -> None:
    registry = httpx.Client(base_url=stack.registry_url, timeout=10)
    user = registry.post(
        "/api/v1/user/create",
        json={"name": f"e2e-{uuid.uuid4().hex[:6]}"},
        headers={"authorization": f"Bearer {stack.admin_token}"},
    )
    assert user.status_code == 200, user.text
    registry.headers["authorization"] = f"Bearer {user.json()['apiKey']}"
    skillset = registry.post("/api/v1/skillset/create", json={"name": "tools"}).json()["id"]
    ability = registry.post(
        f"/api/v1/skillset/{skillset}/ability/create",
        json={"name": "hello", "handler": {"type": "static", "content": [{"type": "text", "text": "hi"}]}},
    )
    assert ability.status_code == 200, ability.text

    created = registry.post(
        "/api/v1/integration/mcpserver/create", json={"name": "e2e", "skillsetId": skillset}
    )
    assert created.status_code == 200, created.text
    integration, first_token, endpoint = (created.json()[k] for k in ("id", "accessToken", "endpoint"))
    assert endpoint == f"{stack.edge_urls[0]}/api/v1/integration/mcpserver/{integration}/mcp"
    opened = _initialize(endpoint, first_token)
    assert opened.status_code == 200, opened.text
    session_id = opened.headers.get("mcp-session-id")
    assert session_id

    sessions = registry.get(f"/api/v1/integration/mcpserver/{integration}/session/list")
    assert sessions.status_code == 200, sessions.text
    assert session_id in [item["id"] for item in sessions.json()["items"]]

    rotated = registry.post(f"/api/v1/integration/mcpserver/{integration}/token/rotate", json={})
    assert rotated.status_code == 200, rotated.text
    second_token = rotated.json()["accessToken"]
    assert second_token != first_token
    # Rotate has returned: no edge replica accepts the old token any more.
    assert _initialize(endpoint, first_token).status_code == 401
    assert _initialize(endpoint, second_token).status_code == 200

    deleted = registry.post(f"/api/v1/integration/mcpserver/{integration}/delete", json={})
    assert deleted.status_code == 200, deleted.text
    assert _initialize(endpoint, second_token).status_code in (401, 404)
    assert registry.get(f"/api/v1/integration/mcpserver/{integration}/fetch").status_code == 404
    assert registry.get("/api/v1/integration/mcpserver/list").json() == {"items": []}
