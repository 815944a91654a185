"""MCP sessions through the whole stack: every service as a process, two edge replicas, no sticky
routing. Sessions are issued by one replica and honoured (or refused) by the other."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from skillrelay_devstack.raw_mcp import initialize_request
from skillrelay_devstack.stack import Stack
from skillrelay_devstack.testing import StackStarter

pytestmark = pytest.mark.slow

ACCEPT = "application/json, text/event-stream"
VERSION = "2025-11-25"
INIT = initialize_request("e2e")
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


@pytest.fixture(scope="module")
def stack(start_stack: StackStarter) -> Iterator[Stack]:
    """One stack with two edge replicas for the whole module (starting one costs seconds)."""
    with start_stack("sessions-stack", edge_replicas=2) as running:
        yield running


class Owner:
    """A registry user with one skillset, creating integrations through the REST API."""

    def __init__(self, stack: Stack) -> None:
        self.registry = httpx.Client(base_url=stack.registry_url, timeout=10)
        created = self.registry.post(
            "/api/v1/user/create",
            json={"name": f"owner-{uuid.uuid4().hex[:6]}"},
            headers={"authorization": f"Bearer {stack.admin_token}"},
        )
        assert created.status_code in (200, 201), created.text
        self.registry.headers["authorization"] = f"Bearer {created.json()['apiKey']}"
        skillset = self.registry.post("/api/v1/skillset/create", json={"name": "s", "description": "d"})
        assert skillset.status_code in (200, 201), skillset.text
        self.skillset_id = skillset.json()["id"]

    def integration(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "i", "description": "d", "skillsetId": self.skillset_id, **fields}
        created = self.registry.post("/api/v1/integration/mcpserver/create", json=body)
        assert created.status_code in (200, 201), created.text
        answer: dict[str, Any] = created.json()
        return answer

    def sessions(self, integration_id: str) -> list[dict[str, Any]]:
        listed = self.registry.get(f"/api/v1/integration/mcpserver/{integration_id}/session/list")
        assert listed.status_code == 200, listed.text
        body = listed.json()
        items: list[dict[str, Any]] = body["items"] if isinstance(body, dict) else body
        return items


@pytest.fixture(scope="module")
def owner(stack: Stack) -> Owner:
    return Owner(stack)


@pytest.fixture(scope="module")
def mcp() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def endpoint(stack: Stack, replica: int, integration_id: str) -> str:
    return f"{stack.edge_urls[replica]}/api/v1/integration/mcpserver/{integration_id}/mcp"


def headers(token: str, session: str | None = None) -> dict[str, str]:
    sent = {"accept": ACCEPT, "content-type": "application/json", "authorization": f"Bearer {token}"}
    if session is not None:
        sent["mcp-session-id"] = session
        sent["mcp-protocol-version"] = VERSION
    return sent


def rpc_result(response: httpx.Response) -> Any:
    """The JSON-RPC answer, whether it came as JSON or as one SSE message."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return json.loads(data[-1])
    return response.json()


def initialize(mcp: httpx.Client, url: str, token: str) -> str:
    response = mcp.post(url, headers=headers(token), json=INIT)
    assert response.status_code == 200, response.text
    assert rpc_result(response)["result"]["protocolVersion"] == VERSION
    session: str = response.headers["mcp-session-id"]
    assert len(session) >= 22 and session.isascii() and session.isprintable()
    mcp.post(
        url, headers=headers(token, session), json={"jsonrpc": "2.0", "method": "notifications/initialized"}
    )
    return session


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_a_session_issued_by_one_replica_is_served_and_ended_by_the_other(
    stack: Stack, owner: Owner, mcp: httpx.Client
) -> None:
    integration = owner.integration()
    token, integration_id = integration["accessToken"], integration["id"]
    first, second = endpoint(stack, 0, integration_id), endpoint(stack, 1, integration_id)
    session = initialize(mcp, first, token)

    on_second = mcp.post(second, headers=headers(token, session), json=PING)
    assert on_second.status_code == 200, on_second.text
    assert rpc_result(on_second) == {"jsonrpc": "2.0", "id": 1, "result": {}}
    listed = owner.sessions(integration_id)
    assert [(s["id"], s["principal"]) for s in listed] == [(session, "static:v1")]

    ended = mcp.delete(second, headers=headers(token, session))
    assert ended.status_code in (200, 202, 204), ended.text
    eventually(lambda: mcp.post(first, headers=headers(token, session), json=PING).status_code == 404)
    assert mcp.post(second, headers=headers(token, session), json=PING).status_code == 404
    assert owner.sessions(integration_id) == []


def test_unknown_or_foreign_session_is_404_and_renew_mode_issues_a_fresh_one(
    stack: Stack, owner: Owner, mcp: httpx.Client
) -> None:
    strict, renew = owner.integration(), owner.integration(sessionMode="renew")
    strict_url, renew_url = endpoint(stack, 0, strict["id"]), endpoint(stack, 1, renew["id"])
    assert (
        mcp.post(strict_url, headers=headers(strict["accessToken"], "no-such-session"), json=PING).status_code
        == 404
    )

    # A session of the strict integration presented to the renew one (with the renew one's token).
    foreign = initialize(mcp, strict_url, strict["accessToken"])
    renewed = mcp.post(renew_url, headers=headers(renew["accessToken"], foreign), json=PING)
    assert renewed.status_code == 200, renewed.text
    fresh = renewed.headers["mcp-session-id"]
    assert fresh and fresh != foreign
    # ... and the renewed session works on the other replica.
    other_replica = endpoint(stack, 0, renew["id"])
    assert mcp.post(other_replica, headers=headers(renew["accessToken"], fresh), json=PING).status_code == 200


def test_a_first_request_without_a_session_is_served_and_gets_one(
    stack: Stack, owner: Owner, mcp: httpx.Client
) -> None:
    integration = owner.integration()
    url = endpoint(stack, 1, integration["id"])
    response = mcp.post(url, headers=headers(integration["accessToken"]), json=PING)
    assert response.status_code == 200, response.text
    assert rpc_result(response) == {"jsonrpc": "2.0", "id": 1, "result": {}}
    session = response.headers["mcp-session-id"]
    assert (
        mcp.post(
            endpoint(stack, 0, integration["id"]),
            headers=headers(integration["accessToken"], session),
            json=PING,
        ).status_code
        == 200
    )


def test_rotating_the_token_ends_the_sessions_it_covered(
    stack: Stack, owner: Owner, mcp: httpx.Client
) -> None:
    integration = owner.integration()
    integration_id, old_token = integration["id"], integration["accessToken"]
    url = endpoint(stack, 0, integration_id)
    session = initialize(mcp, url, old_token)
    rotated = owner.registry.post(f"/api/v1/integration/mcpserver/{integration_id}/token/rotate", json={})
    assert rotated.status_code == 200, rotated.text
    new_token = rotated.json()["accessToken"]

    assert mcp.post(url, headers=headers(old_token, session), json=PING).status_code == 401
    eventually(lambda: owner.sessions(integration_id) == [])
    assert mcp.post(url, headers=headers(new_token, session), json=PING).status_code == 404
    assert initialize(mcp, endpoint(stack, 1, integration_id), new_token)


def test_deleting_the_integration_ends_its_sessions(stack: Stack, owner: Owner, mcp: httpx.Client) -> None:
    keep, doomed = owner.integration(), owner.integration()
    kept = initialize(mcp, endpoint(stack, 0, keep["id"]), keep["accessToken"])
    initialize(mcp, endpoint(stack, 1, doomed["id"]), doomed["accessToken"])
    deleted = owner.registry.post(f"/api/v1/integration/mcpserver/{doomed['id']}/delete", json={})
    assert deleted.status_code == 200, deleted.text
    assert mcp.post(
        endpoint(stack, 1, doomed["id"]), headers=headers(doomed["accessToken"]), json=PING
    ).status_code in (
        401,
        404,
    )
    assert (
        mcp.post(
            endpoint(stack, 1, keep["id"]), headers=headers(keep["accessToken"], kept), json=PING
        ).status_code
        == 200
    )
    assert [s["id"] for s in owner.sessions(keep["id"])] == [kept]


def test_changing_the_oauth_connection_ends_the_sessions_it_covered(
    stack: Stack, owner: Owner, mcp: httpx.Client
) -> None:
    integration, untouched = owner.integration(), owner.integration()
    initialize(mcp, endpoint(stack, 0, integration["id"]), integration["accessToken"])
    kept = initialize(mcp, endpoint(stack, 1, untouched["id"]), untouched["accessToken"])
    connection = owner.registry.post(
        "/api/v1/oauth/connection/create",
        json={
            "name": "idp",
            "clientId": "client",
            "clientSecret": "secret-value",
            "scopes": ["openid"],
            "authorizationUrl": "https://idp.example.com/authorize",
            "tokenUrl": "https://idp.example.com/token",
        },
    )
    assert connection.status_code in (200, 201), connection.text
    renamed = owner.registry.post(
        f"/api/v1/integration/mcpserver/{untouched['id']}/update", json={"name": "n"}
    )
    assert renamed.status_code == 200, renamed.text
    changed = owner.registry.post(
        f"/api/v1/integration/mcpserver/{integration['id']}/update",
        json={"oAuthConnectionId": connection.json()["id"]},
    )
    assert changed.status_code == 200, changed.text
    eventually(lambda: owner.sessions(integration["id"]) == [])
    assert [s["id"] for s in owner.sessions(untouched["id"])] == [kept]


def test_sessions_survive_a_restart_of_the_sessions_service(
    stack: Stack, owner: Owner, mcp: httpx.Client
) -> None:
    integration = owner.integration()
    token = integration["accessToken"]
    session = initialize(mcp, endpoint(stack, 0, integration["id"]), token)
    sessions_process = next(service for service in stack.services if service.name == "sessions")
    sessions_process.stop()
    assert not sessions_process.alive()
    sessions_process.start()
    stack.wait_ready(30)
    answer = mcp.post(endpoint(stack, 1, integration["id"]), headers=headers(token, session), json=PING)
    assert answer.status_code == 200, answer.text
    assert [s["id"] for s in owner.sessions(integration["id"])] == [session]


def test_at_the_integrations_session_cap_the_least_recently_used_session_ends(
    stack: Stack, owner: Owner, mcp: httpx.Client
) -> None:
    """maxSessions holds across the whole stack and both replicas: one session more than the cap ends
    the least recently used one (its client gets 404 and may initialize again)."""
    integration = owner.integration(maxSessions=2)
    token, integration_id = integration["accessToken"], integration["id"]
    first_url, second_url = endpoint(stack, 0, integration_id), endpoint(stack, 1, integration_id)
    oldest = initialize(mcp, first_url, token)
    kept = initialize(mcp, second_url, token)
    newest = initialize(mcp, first_url, token)
    eventually(lambda: mcp.post(second_url, headers=headers(token, oldest), json=PING).status_code == 404)
    assert mcp.post(first_url, headers=headers(token, oldest), json=PING).status_code == 404
    for session in (kept, newest):
        assert mcp.post(second_url, headers=headers(token, session), json=PING).status_code == 200
    assert {item["id"] for item in owner.sessions(integration_id)} == {kept, newest}
    assert (
        owner.registry.get(f"/api/v1/integration/mcpserver/{integration_id}/fetch").json()["maxSessions"] == 2
    )


def test_a_session_lives_as_long_unused_as_its_integration_says(
    stack: Stack, owner: Owner, mcp: httpx.Client
) -> None:
    """sessionIdleMinutes reaches the sessions service: each session's expiry is that far after its last
    use (24 hours when the owner says nothing)."""
    short = owner.integration(sessionIdleMinutes=5)
    default = owner.integration()
    for integration, seconds in ((short, 300), (default, 86_400)):
        initialize(mcp, endpoint(stack, 0, integration["id"]), integration["accessToken"])
        (listed,) = owner.sessions(integration["id"])
        last_seen = datetime.fromisoformat(listed["lastSeenAt"])
        assert (datetime.fromisoformat(listed["expiresAt"]) - last_seen).total_seconds() == pytest.approx(
            seconds
        )
