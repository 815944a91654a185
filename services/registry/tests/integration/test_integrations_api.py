"""MCP server integrations and OAuth connections over the real app, database and NATS, with auth and
sessions answered by the fakes in conftest."""

from typing import Any

import asyncpg
import httpx
import pytest

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.base import NotFound
from skillrelay_common.schemas.registry import (
    GetOAuthConnection,
    IntegrationSnapshot,
    OAuthConnectionSecret,
    ResolveIntegration,
)
from skillrelay_common.subjects import REGISTRY_INTEGRATION_RESOLVE, REGISTRY_OAUTH_CONNECTION_GET

EDGE = "http://edge.example.test"
OAUTH = {
    "name": "Corp IdP",
    "clientId": "client-123",
    "clientSecret": "very-secret-value",
    "scopes": ["openid", "email"],
    "issuer": "https://idp.example.com",
}


async def _skillset(client: httpx.AsyncClient, owner: dict[str, str]) -> str:
    created = await client.post("/api/v1/skillset/create", json={"name": "S"}, headers=owner)
    return str(created.json()["id"])


async def test_integration_lifecycle(
    client: httpx.AsyncClient, new_owner: Any, events: Any, token_authority: Any, session_store: Any, bus: Bus
) -> None:
    owner = await new_owner()
    skillset = await _skillset(client, owner)
    blueprint = (await client.post("/api/v1/blueprint/create", json={"name": "B"}, headers=owner)).json()[
        "id"
    ]
    created = await client.post(
        "/api/v1/integration/mcpserver/create",
        json={
            "name": "Weather MCP",
            "skillsetId": skillset,
            "blueprintId": blueprint,
            "meta": {"env": "prod"},
        },
        headers=owner,
    )
    assert created.status_code == 200, created.text
    body = created.json()
    integration = body["id"]
    assert integration.startswith("mcpserver_")
    assert body["endpoint"] == f"{EDGE}/api/v1/integration/mcpserver/{integration}/mcp"
    assert body["accessToken"] == token_authority.tokens[integration][0]
    event = await events.wait_for(
        "events.registry.integration.created", lambda e: e["integration_id"] == integration
    )
    assert event["skillset_id"] == skillset and event["owner_id"].startswith("user_")

    fetched = await client.get(f"/api/v1/integration/mcpserver/{integration}/fetch", headers=owner)
    record = fetched.json()
    assert record["endpoint"] == body["endpoint"] and record["sessionMode"] == "strict"
    assert record["blueprintId"] == blueprint and record["meta"] == {"env": "prod"}
    assert body["accessToken"] not in fetched.text and "accessToken" not in record

    connection = (await client.post("/api/v1/oauth/connection/create", json=OAUTH, headers=owner)).json()[
        "id"
    ]
    updated = await client.post(
        f"/api/v1/integration/mcpserver/{integration}/update",
        json={
            "blueprintId": None,
            "oAuthConnectionId": connection,
            "sessionMode": "renew",
            "name": "Weather MCP",
        },
        headers=owner,
    )
    assert updated.json() == {"id": integration}
    event = await events.wait_for(
        "events.registry.integration.updated", lambda e: e["integration_id"] == integration
    )
    assert sorted(event["fields"]) == ["blueprintId", "oAuthConnectionId", "sessionMode"]
    snapshot = await bus.request(REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id=integration))
    assert isinstance(snapshot, IntegrationSnapshot)
    assert (
        snapshot.integration.o_auth_connection_id == connection and snapshot.integration.oauth_generation == 1
    )
    assert snapshot.integration.blueprint_id is None and snapshot.integration.session_mode == "renew"
    await client.post(
        f"/api/v1/integration/mcpserver/{integration}/update", json={"oAuthConnectionId": None}, headers=owner
    )
    snapshot = await bus.request(REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id=integration))
    assert isinstance(snapshot, IntegrationSnapshot)
    assert snapshot.integration.o_auth_connection_id is None and snapshot.integration.oauth_generation == 2

    rotated = await client.post(
        f"/api/v1/integration/mcpserver/{integration}/token/rotate", json={}, headers=owner
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json() == {"id": integration, "accessToken": token_authority.tokens[integration][0]}
    assert (
        rotated.json()["accessToken"] != body["accessToken"] and token_authority.tokens[integration][1] == 2
    )

    session = session_store.add(integration)
    listed = await client.get(f"/api/v1/integration/mcpserver/{integration}/session/list", headers=owner)
    items = listed.json()["items"]
    assert [s["id"] for s in items] == [session.session_id]
    assert items[0]["principal"] == "static:v1" and items[0]["expiresAt"].endswith("Z")
    ended = await client.post(
        f"/api/v1/integration/mcpserver/{integration}/session/{session.session_id}/delete", headers=owner
    )
    assert ended.json() == {"id": session.session_id} and session.session_id not in session_store.sessions

    session_store.add(integration)
    deleted = await client.post(f"/api/v1/integration/mcpserver/{integration}/delete", json={}, headers=owner)
    assert deleted.json() == {"id": integration}
    assert integration in token_authority.revoked and integration not in token_authority.tokens
    assert session_store.closed_all == [integration] and not session_store.sessions
    await events.wait_for("events.registry.integration.deleted", lambda e: e["integration_id"] == integration)
    assert (
        await client.get(f"/api/v1/integration/mcpserver/{integration}/fetch", headers=owner)
    ).status_code == 404
    gone = await bus.request(REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id=integration))
    assert isinstance(gone, NotFound)


async def test_sessions_of_another_integration_are_404(
    client: httpx.AsyncClient, new_owner: Any, session_store: Any
) -> None:
    owner = await new_owner()
    skillset = await _skillset(client, owner)
    first, second = [
        (
            await client.post(
                "/api/v1/integration/mcpserver/create",
                json={"name": n, "skillsetId": skillset},
                headers=owner,
            )
        ).json()["id"]
        for n in ("one", "two")
    ]
    foreign = session_store.add(second)
    wrong = await client.post(
        f"/api/v1/integration/mcpserver/{first}/session/{foreign.session_id}/delete", headers=owner
    )
    assert wrong.status_code == 404 and foreign.session_id in session_store.sessions
    unknown = await client.post(f"/api/v1/integration/mcpserver/{first}/session/nope/delete", headers=owner)
    assert unknown.status_code == 404
    assert (
        await client.get(f"/api/v1/integration/mcpserver/{first}/session/list", headers=owner)
    ).json() == {"items": []}


async def test_auth_down_means_503_and_nothing_half_created(
    client: httpx.AsyncClient, new_owner: Any, token_authority: Any, session_store: Any
) -> None:
    owner = await new_owner()
    skillset = await _skillset(client, owner)
    kept = (
        await client.post(
            "/api/v1/integration/mcpserver/create",
            json={"name": "kept", "skillsetId": skillset},
            headers=owner,
        )
    ).json()["id"]
    await token_authority.stop()

    refused = await client.post(
        "/api/v1/integration/mcpserver/create", json={"name": "new", "skillsetId": skillset}, headers=owner
    )
    assert refused.status_code == 503 and refused.json()["code"] == "unavailable"
    listed = (await client.get("/api/v1/integration/mcpserver/list", headers=owner)).json()["items"]
    assert [item["id"] for item in listed] == [kept]

    rotate = await client.post(f"/api/v1/integration/mcpserver/{kept}/token/rotate", headers=owner)
    assert rotate.status_code == 503 and rotate.json()["code"] == "unavailable"
    delete = await client.post(f"/api/v1/integration/mcpserver/{kept}/delete", headers=owner)
    assert delete.status_code == 503
    assert (await client.get(f"/api/v1/integration/mcpserver/{kept}/fetch", headers=owner)).status_code == 200

    await session_store.stop()
    sessions = await client.get(f"/api/v1/integration/mcpserver/{kept}/session/list", headers=owner)
    assert sessions.status_code == 503


async def test_references_and_in_use_records(client: httpx.AsyncClient, new_owner: Any) -> None:
    owner, other = await new_owner("a"), await new_owner("b")
    skillset = await _skillset(client, owner)
    theirs = await _skillset(client, other)
    url = "/api/v1/integration/mcpserver/create"
    assert (
        await client.post(url, json={"name": "x", "skillsetId": theirs}, headers=owner)
    ).status_code == 404
    assert (
        await client.post(url, json={"name": "x", "skillsetId": "skillset_nope"}, headers=owner)
    ).status_code == 404
    bad_mode = await client.post(
        url, json={"name": "x", "skillsetId": skillset, "sessionMode": "sticky"}, headers=owner
    )
    assert bad_mode.status_code == 400
    missing = await client.post(url, json={"name": "x"}, headers=owner)
    assert missing.status_code == 400 and "skillsetId" in missing.json()["message"]

    connection = (await client.post("/api/v1/oauth/connection/create", json=OAUTH, headers=owner)).json()[
        "id"
    ]
    integration = (
        await client.post(
            url, json={"name": "x", "skillsetId": skillset, "oAuthConnectionId": connection}, headers=owner
        )
    ).json()["id"]
    in_use = await client.post(f"/api/v1/skillset/{skillset}/delete", headers=owner)
    assert in_use.status_code == 409 and in_use.json()["code"] == "conflict"
    assert (
        await client.post(f"/api/v1/oauth/connection/{connection}/delete", headers=owner)
    ).status_code == 409
    assert (
        await client.post(f"/api/v1/integration/mcpserver/{integration}/delete", headers=owner)
    ).status_code == 200
    assert (
        await client.post(f"/api/v1/oauth/connection/{connection}/delete", headers=owner)
    ).status_code == 200
    assert (await client.post(f"/api/v1/skillset/{skillset}/delete", headers=owner)).status_code == 200


async def test_oauth_connections_keep_the_secret_encrypted_and_unseen(
    client: httpx.AsyncClient, new_owner: Any, events: Any, database_url: str, bus: Bus
) -> None:
    owner = await new_owner()
    created = await client.post("/api/v1/oauth/connection/create", json=OAUTH, headers=owner)
    assert created.status_code == 200, created.text
    connection = created.json()["id"]
    assert connection.startswith("oauthconnection_") and "very-secret-value" not in created.text
    await events.wait_for("events.registry.oauthconnection.created", lambda e: e["id"] == connection)

    fetched = await client.get(f"/api/v1/oauth/connection/{connection}/fetch", headers=owner)
    assert (
        fetched.json()["clientId"] == "client-123" and fetched.json()["issuer"] == "https://idp.example.com"
    )
    listed = await client.get("/api/v1/oauth/connection/list", headers=owner)
    for text in (fetched.text, listed.text):
        assert "very-secret-value" not in text and "clientSecret" not in text

    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT * FROM registry.oauth_connections")
    finally:
        await conn.close()
    assert row is not None and "very-secret-value" not in str(dict(row))

    secret = await bus.request(REGISTRY_OAUTH_CONNECTION_GET, GetOAuthConnection(connection_id=connection))
    assert isinstance(secret, OAuthConnectionSecret)
    assert secret.client_secret == "very-secret-value" and secret.scopes == ["openid", "email"]
    missing = await bus.request(
        REGISTRY_OAUTH_CONNECTION_GET, GetOAuthConnection(connection_id="oauthconnection_x")
    )
    assert isinstance(missing, NotFound)

    switched = await client.post(
        f"/api/v1/oauth/connection/{connection}/update",
        json={
            "issuer": None,
            "authorizationUrl": "https://idp.example.com/authorize",
            "tokenUrl": "https://idp.example.com/token",
            "userinfoUrl": "https://idp.example.com/userinfo",
            "clientSecret": "rotated-secret",
        },
        headers=owner,
    )
    assert switched.status_code == 200, switched.text
    await events.wait_for("events.registry.oauthconnection.updated", lambda e: e["id"] == connection)
    secret = await bus.request(REGISTRY_OAUTH_CONNECTION_GET, GetOAuthConnection(connection_id=connection))
    assert isinstance(secret, OAuthConnectionSecret)
    assert secret.client_secret == "rotated-secret" and secret.issuer is None
    assert secret.token_url == "https://idp.example.com/token"

    bad: list[tuple[dict[str, Any], str]] = [
        ({**OAUTH, "authorizationUrl": "https://idp/a"}, "not both"),
        ({k: v for k, v in OAUTH.items() if k != "issuer"}, "either issuer"),
        ({**OAUTH, "issuer": "ftp://idp"}, "http"),
        ({**OAUTH, "clientSecret": ""}, "clientSecret"),
        ({k: v for k, v in OAUTH.items() if k != "clientId"}, "clientId"),
    ]
    for body, expected in bad:
        response = await client.post("/api/v1/oauth/connection/create", json=body, headers=owner)
        assert response.status_code == 400 and expected in response.json()["message"], (body, response.text)
    assert (
        await client.post(f"/api/v1/oauth/connection/{connection}/delete", headers=owner)
    ).status_code == 200
    await events.wait_for("events.registry.oauthconnection.deleted", lambda e: e["id"] == connection)


async def test_resolve_returns_the_whole_skillset_snapshot(
    client: httpx.AsyncClient, new_owner: Any, bus: Bus
) -> None:
    owner = await new_owner()
    skillset = await _skillset(client, owner)
    base = f"/api/v1/skillset/{skillset}"
    await client.post(
        f"{base}/ability/create",
        json={"name": "echo", "handler": {"type": "static", "content": [{"type": "text", "text": "{{x}}"}]}},
        headers=owner,
    )
    await client.post(
        f"{base}/ability/create",
        json={"name": "lookup", "handler": {"type": "worker", "subject": "lookup"}, "meta": {"a": 1}},
        headers=owner,
    )
    await client.post(
        f"{base}/resource/create", json={"name": "r", "uri": "file:///r", "text": "hi"}, headers=owner
    )
    await client.post(
        f"{base}/prompt/create",
        json={"name": "p", "messages": [{"role": "user", "content": {"type": "text", "text": "hello"}}]},
        headers=owner,
    )
    integration = (
        await client.post(
            "/api/v1/integration/mcpserver/create", json={"name": "i", "skillsetId": skillset}, headers=owner
        )
    ).json()["id"]

    snapshot = await bus.request(REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id=integration))
    assert isinstance(snapshot, IntegrationSnapshot)
    assert snapshot.integration.id == integration and snapshot.integration.skillset_id == skillset
    assert snapshot.skillset.revision == 5
    assert [a.name for a in snapshot.skillset.abilities] == ["echo", "lookup"]
    assert snapshot.skillset.abilities[0].handler.__struct_config__.tag == "static"
    assert snapshot.skillset.abilities[1].meta == {"a": 1}
    assert snapshot.skillset.resources[0].uri == "file:///r" and snapshot.skillset.resources[0].text == "hi"
    assert snapshot.skillset.prompts[0].messages[0].content == {"type": "text", "text": "hello"}
    missing = await bus.request(
        REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id="mcpserver_nope")
    )
    assert isinstance(missing, NotFound)


async def test_database_unreachable_is_503_then_recovers(
    client: httpx.AsyncClient, new_owner: Any, database_url: str, postgres_admin_url: str
) -> None:
    owner = await new_owner()
    name = database_url.rpartition("/")[2]
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        # New connections are refused and the pooled ones are cut: PostgreSQL is "down" for us.
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        for request in (
            client.post("/api/v1/skillset/create", json={"name": "S"}, headers=owner),
            client.get("/api/v1/skillset/list", headers=owner),
        ):
            response = await request
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "unavailable"
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    recovered = await client.post("/api/v1/skillset/create", json={"name": "S"}, headers=owner)
    assert recovered.status_code == 200, recovered.text


async def test_sessions_are_listed_in_pages_with_a_cursor(
    client: httpx.AsyncClient, new_owner: Any, session_store: Any
) -> None:
    owner = await new_owner()
    skillset = await _skillset(client, owner)
    integration = (
        await client.post(
            "/api/v1/integration/mcpserver/create", json={"name": "x", "skillsetId": skillset}, headers=owner
        )
    ).json()["id"]
    opened = [session_store.add(integration).session_id for _ in range(5)]
    url = f"/api/v1/integration/mcpserver/{integration}/session/list"
    seen: list[str] = []
    params: dict[str, str] = {"take": "2"}
    pages = 0
    while True:
        page = await client.get(url, params=params, headers=owner)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        pages += 1
        if "cursor" not in body:
            break
        params = {"take": "2", "cursor": body["cursor"]}
    assert pages == 3 and seen == opened[::-1]  # newest first, like every other list
    oldest_first = await client.get(url, params={"order": "asc", "take": "100"}, headers=owner)
    assert [item["id"] for item in oldest_first.json()["items"]] == opened
    for bad in ({"take": "0"}, {"take": "101"}, {"cursor": "not-a-cursor"}, {"order": "up"}):
        refused = await client.get(url, params=bad, headers=owner)
        assert refused.status_code == 400, (bad, refused.text)


@pytest.mark.parametrize(
    ("field", "default", "value", "on_the_edge", "bad", "largest"),
    [
        # The cap on live sessions; the largest allowed is accepted.
        ("maxSessions", 1000, 3, ("max_sessions", 3), (0, -5, 10_001, "many"), 10_000),
        # A day by default, as before the setting existed; the edge opens sessions with it.
        ("sessionIdleMinutes", 1440, 30, ("session_ttl_seconds", 1800), (0, 43_201, "long"), None),
    ],
)
async def test_an_integration_setting_has_a_default_and_bounds(
    client: httpx.AsyncClient,
    new_owner: Any,
    bus: Bus,
    field: str,
    default: int,
    value: int,
    on_the_edge: tuple[str, int],
    bad: tuple[object, ...],
    largest: int | None,
) -> None:
    owner = await new_owner()
    skillset = await _skillset(client, owner)
    url = "/api/v1/integration/mcpserver/create"
    created = await client.post(url, json={"name": "x", "skillsetId": skillset}, headers=owner)
    integration = created.json()["id"]
    fetched = await client.get(f"/api/v1/integration/mcpserver/{integration}/fetch", headers=owner)
    assert fetched.json()[field] == default
    updated = await client.post(
        f"/api/v1/integration/mcpserver/{integration}/update", json={field: value}, headers=owner
    )
    assert updated.status_code == 200, updated.text
    fetched = await client.get(f"/api/v1/integration/mcpserver/{integration}/fetch", headers=owner)
    assert fetched.json()[field] == value
    # The edge learns it with the integration.
    snapshot = await bus.request(REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id=integration))
    attribute, expected = on_the_edge
    assert isinstance(snapshot, IntegrationSnapshot) and getattr(snapshot.integration, attribute) == expected
    for wrong in bad:
        body = {"name": "y", "skillsetId": skillset, field: wrong}
        refused = await client.post(url, json=body, headers=owner)
        assert refused.status_code == 400 and field in refused.json()["message"], refused.text
    if largest is not None:
        body = {"name": "z", "skillsetId": skillset, field: largest}
        accepted = await client.post(url, json=body, headers=owner)
        assert accepted.status_code == 200
