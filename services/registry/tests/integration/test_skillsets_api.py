"""Users, blueprints, skillsets and their abilities, resources and prompts over the real app, database
and NATS: every call, the validation errors, the events."""

from typing import Any

import asyncpg
import httpx

ECHO = {"type": "static", "content": [{"type": "text", "text": "you said {{text}}"}]}


async def test_user_create_needs_the_admin_token_and_stores_only_a_hash(
    client: httpx.AsyncClient, new_owner: Any, database_url: str, events: Any
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        denied = await client.post("/api/v1/user/create", json={"name": "x"}, headers=headers)
        assert denied.status_code == 401
        assert denied.json()["code"] == "unauthorized"
    headers = await new_owner("alice")
    api_key = headers["Authorization"].removeprefix("Bearer ")
    assert api_key.startswith("sr_key_") and len(api_key) >= len("sr_key_") + 43  # 256 bits, base64url
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetch("SELECT * FROM registry.users")
    finally:
        await conn.close()
    assert len(stored) == 1 and api_key not in str(dict(stored[0]))
    event = await events.wait_for("events.registry.user.created", lambda e: e["id"] == stored[0]["id"])
    assert event["owner_id"] == stored[0]["id"] and api_key not in str(event)
    # An API key is not the admin token, and vice versa.
    as_owner = await client.post("/api/v1/user/create", json={"name": "x"}, headers=headers)
    assert as_owner.status_code == 401


async def test_every_owner_call_needs_a_valid_api_key(client: httpx.AsyncClient) -> None:
    calls = [
        ("GET", "/api/v1/skillset/list"),
        ("POST", "/api/v1/skillset/create"),
        ("GET", "/api/v1/blueprint/list"),
        ("GET", "/api/v1/oauth/connection/list"),
        ("GET", "/api/v1/integration/mcpserver/list"),
        ("POST", "/api/v1/integration/mcpserver/mcpserver_x/token/rotate"),
        ("GET", "/api/v1/skillset/skillset_x/ability/list"),
    ]
    for method, path in calls:
        for headers in ({}, {"Authorization": "Bearer sr_key_not-a-key"}):
            response = await client.request(method, path, json={}, headers=headers)
            assert response.status_code == 401, (path, response.text)
            body = response.json()
            assert set(body) == {"code", "message"} and body["code"] == "unauthorized"


async def test_blueprint_and_skillset_lifecycle_with_events(
    client: httpx.AsyncClient, new_owner: Any, events: Any
) -> None:
    owner = await new_owner()
    traced = await client.post(
        "/api/v1/blueprint/create",
        json={"name": "B", "meta": {"team": "x"}},
        headers={**owner, "Skillrelay-Correlation-Id": "trace-me-123"},
    )
    assert traced.headers["skillrelay-correlation-id"] == "trace-me-123"
    blueprint = traced.json()["id"]
    assert blueprint.startswith("blueprint_")
    await events.wait_for("events.registry.blueprint.created", lambda e: e["id"] == blueprint)

    created = await client.post(
        "/api/v1/skillset/create",
        json={"name": "Weather", "description": "forecasts", "blueprintId": blueprint, "meta": {"v": 1}},
        headers=owner,
    )
    assert created.status_code == 200, created.text
    skillset = created.json()["id"]
    assert skillset.startswith("skillset_")
    event = await events.wait_for("events.registry.skillset.created", lambda e: e["skillset_id"] == skillset)
    assert event["revision"] == 1 and event["entity"] == "skillset"

    fetched = (await client.get(f"/api/v1/skillset/{skillset}/fetch", headers=owner)).json()
    assert (
        fetched["name"] == "Weather" and fetched["blueprintId"] == blueprint and fetched["meta"] == {"v": 1}
    )
    assert fetched["createdAt"].endswith("Z") and fetched["updatedAt"] == fetched["createdAt"]

    updated = await client.post(
        f"/api/v1/skillset/{skillset}/update", json={"description": "new", "blueprintId": None}, headers=owner
    )
    assert updated.json() == {"id": skillset}
    event = await events.wait_for("events.registry.skillset.updated", lambda e: e["skillset_id"] == skillset)
    assert event["revision"] == 2
    fetched = (await client.get(f"/api/v1/skillset/{skillset}/fetch", headers=owner)).json()
    assert fetched["description"] == "new" and "blueprintId" not in fetched and fetched["revision"] == 2

    listed = (await client.get("/api/v1/skillset/list", headers=owner)).json()
    assert [item["id"] for item in listed["items"]] == [skillset] and "cursor" not in listed
    blueprints = (await client.get("/api/v1/blueprint/list", headers=owner)).json()["items"]
    assert [b["id"] for b in blueprints] == [blueprint]
    await client.post(f"/api/v1/blueprint/{blueprint}/update", json={"name": "B2"}, headers=owner)
    assert (await client.get(f"/api/v1/blueprint/{blueprint}/fetch", headers=owner)).json()["name"] == "B2"
    assert (
        await client.post(f"/api/v1/blueprint/{blueprint}/delete", json={}, headers=owner)
    ).status_code == 200
    await events.wait_for("events.registry.blueprint.deleted", lambda e: e["id"] == blueprint)
    assert (await client.get(f"/api/v1/blueprint/{blueprint}/fetch", headers=owner)).status_code == 404

    deleted = await client.post(f"/api/v1/skillset/{skillset}/delete", headers=owner)
    assert deleted.json() == {"id": skillset}
    await events.wait_for("events.registry.skillset.deleted", lambda e: e["skillset_id"] == skillset)
    missing = await client.get(f"/api/v1/skillset/{skillset}/fetch", headers=owner)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_abilities_crud_revisions_and_rules(
    client: httpx.AsyncClient, new_owner: Any, events: Any
) -> None:
    owner = await new_owner()
    skillset = (await client.post("/api/v1/skillset/create", json={"name": "S"}, headers=owner)).json()["id"]
    base = f"/api/v1/skillset/{skillset}/ability"
    body = {
        "name": "echo",
        "title": "Echo",
        "description": "repeats",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        "outputSchema": {"type": "object", "properties": {"said": {"type": "string"}}},
        "annotations": {"readOnlyHint": True},
        "handler": ECHO,
        "meta": {"k": "v"},
    }
    created = await client.post(f"{base}/create", json=body, headers=owner)
    assert created.status_code == 200, created.text
    ability = created.json()["id"]
    assert ability.startswith("ability_")
    event = await events.wait_for("events.registry.ability.created", lambda e: e["item_id"] == ability)
    assert event["skillset_id"] == skillset and event["revision"] == 2

    fetched = (await client.get(f"{base}/{ability}/fetch", headers=owner)).json()
    assert fetched["inputSchema"] == body["inputSchema"] and fetched["handler"] == ECHO
    assert fetched["skillsetId"] == skillset and fetched["annotations"] == {"readOnlyHint": True}

    duplicate = await client.post(f"{base}/create", json={**body, "title": "again"}, headers=owner)
    assert duplicate.status_code == 409 and "echo" in duplicate.json()["message"]

    http_handler = {"type": "http", "method": "POST", "url": "https://api.example.com/echo", "timeoutMs": 500}
    renamed = await client.post(
        f"{base}/{ability}/update",
        json={"name": "echo.v2", "handler": http_handler, "outputSchema": None},
        headers=owner,
    )
    assert renamed.status_code == 200, renamed.text
    event = await events.wait_for("events.registry.ability.updated", lambda e: e["item_id"] == ability)
    assert event["revision"] == 3
    fetched = (await client.get(f"{base}/{ability}/fetch", headers=owner)).json()
    assert fetched["name"] == "echo.v2" and fetched["handler"]["url"] == "https://api.example.com/echo"
    assert "outputSchema" not in fetched

    second = (await client.post(f"{base}/create", json={**body, "name": "other"}, headers=owner)).json()["id"]
    clash = await client.post(f"{base}/{second}/update", json={"name": "echo.v2"}, headers=owner)
    assert clash.status_code == 409

    listed = (await client.get(f"{base}/list?order=asc", headers=owner)).json()["items"]
    assert [a["id"] for a in listed] == [ability, second]
    assert (await client.post(f"{base}/{second}/delete", json={}, headers=owner)).status_code == 200
    event = await events.wait_for("events.registry.ability.deleted", lambda e: e["item_id"] == second)
    assert event["revision"] == 5
    assert (await client.get(f"{base}/{second}/fetch", headers=owner)).status_code == 404
    assert (await client.get(f"/api/v1/skillset/{skillset}/fetch", headers=owner)).json()["revision"] == 5


async def test_bad_ability_inputs_are_clear_400s(client: httpx.AsyncClient, new_owner: Any) -> None:
    owner = await new_owner()
    skillset = (await client.post("/api/v1/skillset/create", json={"name": "S"}, headers=owner)).json()["id"]
    url = f"/api/v1/skillset/{skillset}/ability/create"
    good = {"name": "ok", "handler": ECHO}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "name": "bad name"}, "not a valid MCP tool name"),
        ({**good, "name": "x" * 129}, "not a valid MCP tool name"),
        ({**good, "inputSchema": {"type": "string"}}, '"type": "object"'),
        (
            {**good, "inputSchema": {"type": "object", "properties": {"a": {"type": 12}}}},
            "not a valid JSON Schema",
        ),
        ({**good, "outputSchema": {"type": "array"}}, "outputSchema"),
        ({**good, "handler": {"type": "python", "code": "import os"}}, "unknown handler type 'python'"),
        ({**good, "handler": {"type": "http", "url": "file:///etc/passwd"}}, "http:// or https://"),
        ({**good, "handler": {"type": "http"}}, "url"),
        ({**good, "handler": {"type": "static", "content": [{"type": "text"}]}}, "content[0].text"),
        ({**good, "handler": {"type": "worker", "subject": "a b"}}, "subject"),
        ({**good, "inputSchema": "object"}, "inputSchema"),
        ({**good, "name": 5}, "name"),
        ({**good, "surprise": True}, "surprise"),
        ({"handler": ECHO}, "name"),
    ]
    for body, expected in cases:
        response = await client.post(url, json=body, headers=owner)
        assert response.status_code == 400, (body, response.text)
        error = response.json()
        assert error["code"] == "bad_request" and expected in error["message"], (expected, error)
    for raw in (b"{not json", b"[]", b"", b"null"):
        response = await client.post(url, content=raw, headers={**owner, "Content-Type": "application/json"})
        assert response.status_code == 400, (raw[:20], response.text)
    # Refused before the decoder recurses into it (a RecursionError would hurt the process).
    deep = b'{"name": "x", "handler": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await client.post(url, content=deep, headers={**owner, "Content-Type": "application/json"})
    assert response.status_code == 400 and "nested more than" in response.json()["message"]
    deepest = b"[" * 100_000 + b"]" * 100_000
    response = await client.post(url, content=deepest, headers={**owner, "Content-Type": "application/json"})
    assert response.status_code == 400 and "nested more than" in response.json()["message"]
    # Regression: bytes that are not UTF-8 reached the JSON decoder, whose UnicodeDecodeError was a 500.
    for raw in (b'{"name": "\xff\xfe"}', b"\xc3\x28", b'{"name": "ok", "description": "\xed\xa0\x80"}'):
        response = await client.post(url, content=raw, headers={**owner, "Content-Type": "application/json"})
        assert response.status_code == 400 and "UTF-8" in response.json()["message"], (raw, response.text)
    # Two Authorization headers: refused, not "the last one wins".
    doubled = [("Authorization", owner["Authorization"]), ("Authorization", "Bearer someone-else")]
    for attempt in (
        client.post(url, json={"name": "x", "handler": ECHO}, headers=doubled),
        client.get(f"/api/v1/skillset/{skillset}/ability/list", headers=doubled),
    ):
        response = await attempt
        assert response.status_code == 400 and "one Authorization header" in response.json()["message"]
    too_big = {
        "name": "big",
        "handler": {"type": "static", "content": [{"type": "text", "text": "x" * 300_000}]},
    }
    response = await client.post(url, json=too_big, headers=owner)
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert (await client.get(f"/api/v1/skillset/{skillset}/ability/list", headers=owner)).json()[
        "items"
    ] == []


async def test_resources_static_templated_and_their_rules(
    client: httpx.AsyncClient, new_owner: Any, events: Any
) -> None:
    owner = await new_owner()
    skillset = (await client.post("/api/v1/skillset/create", json={"name": "S"}, headers=owner)).json()["id"]
    base = f"/api/v1/skillset/{skillset}/resource"
    text = await client.post(
        f"{base}/create",
        json={"name": "readme", "uri": "file:///readme.md", "mimeType": "text/markdown", "text": "# hi"},
        headers=owner,
    )
    assert text.status_code == 200, text.text
    text_id = text.json()["id"]
    assert text_id.startswith("resource_")
    event = await events.wait_for("events.registry.resource.created", lambda e: e["item_id"] == text_id)
    assert event["uri"] == "file:///readme.md"

    blob = await client.post(
        f"{base}/create",
        json={"name": "logo", "uri": "file:///logo.png", "blob": "iVBORw0KGgo="},
        headers=owner,
    )
    assert blob.status_code == 200, blob.text
    templated = await client.post(
        f"{base}/create",
        json={
            "name": "user",
            "uriTemplate": "users://{id}/profile{?fields}",
            "handler": {"type": "worker", "subject": "users.profile"},
        },
        headers=owner,
    )
    assert templated.status_code == 200, templated.text

    duplicate = await client.post(
        f"{base}/create", json={"name": "again", "uri": "file:///readme.md", "text": "x"}, headers=owner
    )
    assert duplicate.status_code == 409
    bad: list[tuple[dict[str, Any], str]] = [
        ({"name": "n", "uri": "not a uri", "text": "x"}, "valid absolute URI"),
        (
            {"name": "n", "uri": "file:///a", "text": "x", "blob": "eA=="},
            "exactly one of text, blob or handler",
        ),
        ({"name": "n", "uri": "file:///a", "blob": "%%%"}, "base64"),
        ({"name": "n", "uriTemplate": "x://{a", "handler": {"type": "worker", "subject": "s"}}, "unclosed"),
        ({"name": "n", "uriTemplate": "x://{a}"}, "needs a handler"),
        (
            {"name": "n", "uriTemplate": "x://{a}", "handler": ECHO},
            "handler type 'static' is not allowed here",
        ),
        ({"name": "n"}, "exactly one of uri or uriTemplate"),
    ]
    for body, expected in bad:
        response = await client.post(f"{base}/create", json=body, headers=owner)
        assert response.status_code == 400 and expected in response.json()["message"], (body, response.text)

    changed = await client.post(f"{base}/{text_id}/update", json={"text": "# changed"}, headers=owner)
    assert changed.status_code == 200
    event = await events.wait_for("events.registry.resource.updated", lambda e: e["item_id"] == text_id)
    assert event["uri"] == "file:///readme.md"
    invalid_merge = await client.post(f"{base}/{text_id}/update", json={"blob": "eA=="}, headers=owner)
    assert invalid_merge.status_code == 400
    fetched = (await client.get(f"{base}/{text_id}/fetch", headers=owner)).json()
    assert fetched["text"] == "# changed" and "blob" not in fetched
    assert len((await client.get(f"{base}/list", headers=owner)).json()["items"]) == 3
    assert (await client.post(f"{base}/{text_id}/delete", headers=owner)).status_code == 200
    event = await events.wait_for("events.registry.resource.deleted", lambda e: e["item_id"] == text_id)
    assert event["uri"] == "file:///readme.md"


async def test_prompts_and_their_rules(client: httpx.AsyncClient, new_owner: Any, events: Any) -> None:
    owner = await new_owner()
    skillset = (await client.post("/api/v1/skillset/create", json={"name": "S"}, headers=owner)).json()["id"]
    base = f"/api/v1/skillset/{skillset}/prompt"
    body = {
        "name": "review",
        "description": "code review",
        "arguments": [{"name": "code", "required": True}, {"name": "style"}],
        "messages": [
            {"role": "user", "content": {"type": "text", "text": "Review {{code}} in {{ style }} style"}},
            {"role": "assistant", "content": {"type": "text", "text": "Sure."}},
        ],
    }
    created = await client.post(f"{base}/create", json=body, headers=owner)
    assert created.status_code == 200, created.text
    prompt = created.json()["id"]
    assert prompt.startswith("prompt_")
    await events.wait_for("events.registry.prompt.created", lambda e: e["item_id"] == prompt)
    fetched = (await client.get(f"{base}/{prompt}/fetch", headers=owner)).json()
    assert fetched["arguments"][0] == {"name": "code", "description": "", "required": True}
    assert fetched["messages"][0]["role"] == "user"

    assert (await client.post(f"{base}/create", json=body, headers=owner)).status_code == 409
    bad: list[tuple[dict[str, Any], str]] = [
        (
            {**body, "name": "a", "messages": [{"role": "system", "content": {"type": "text", "text": "x"}}]},
            "role",
        ),
        ({**body, "name": "b", "messages": [{"role": "user", "content": {"type": "txt"}}]}, "content type"),
        ({**body, "name": "c", "arguments": [{"name": "code"}, {"name": "code"}]}, "appears twice"),
        ({**body, "name": "d", "arguments": []}, "not an argument"),
        ({"name": "e"}, "either messages or a handler"),
        ({**body, "name": "f", "handler": {"type": "worker", "subject": "p"}}, "not both"),
    ]
    for bad_body, expected in bad:
        response = await client.post(f"{base}/create", json=bad_body, headers=owner)
        assert response.status_code == 400 and expected in response.json()["message"], (
            bad_body,
            response.text,
        )

    worker_prompt = await client.post(
        f"{base}/create",
        json={
            "name": "dynamic",
            "arguments": [{"name": "q"}],
            "handler": {"type": "worker", "subject": "p.q"},
        },
        headers=owner,
    )
    assert worker_prompt.status_code == 200, worker_prompt.text
    updated = await client.post(
        f"{base}/{prompt}/update", json={"arguments": [{"name": "code"}, {"name": "style"}]}, headers=owner
    )
    assert updated.status_code == 200, updated.text
    dropped = await client.post(f"{base}/{prompt}/update", json={"arguments": []}, headers=owner)
    assert dropped.status_code == 400  # the messages still use {{code}}
    assert len((await client.get(f"{base}/list", headers=owner)).json()["items"]) == 2
    assert (await client.post(f"{base}/{prompt}/delete", json={}, headers=owner)).status_code == 200
    assert (await client.get(f"{base}/{prompt}/fetch", headers=owner)).status_code == 404


async def test_openapi_document_lists_every_call(client: httpx.AsyncClient) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    paths = document["paths"]
    for path in (
        "/api/v1/user/create",
        "/api/v1/skillset/{skillset_id}/ability/{item_id}/update",
        "/api/v1/skillset/{skillset_id}/resource/list",
        "/api/v1/skillset/{skillset_id}/prompt/create",
        "/api/v1/blueprint/list",
        "/api/v1/oauth/connection/{connection_id}/fetch",
        "/api/v1/integration/mcpserver/create",
        "/api/v1/integration/mcpserver/{integration_id}/token/rotate",
        "/api/v1/integration/mcpserver/{integration_id}/session/{session_id}/delete",
    ):
        assert path in paths, path
    # The three kinds' controllers come from one factory: each still names its own body and record.
    for kind, body, record in (
        ("ability", "AbilityCreate", "AbilityOut"),
        ("resource", "ResourceCreate", "ResourceOut"),
        ("prompt", "PromptCreate", "PromptOut"),
    ):
        create = paths[f"/api/v1/skillset/{{skillset_id}}/{kind}/create"]["post"]
        assert body in str(create["requestBody"]), kind
        fetch = paths[f"/api/v1/skillset/{{skillset_id}}/{kind}/{{item_id}}/fetch"]["get"]
        assert record in str(fetch["responses"]["200"]), kind
    listed = {p["name"] for p in paths["/api/v1/integration/mcpserver/list"]["get"]["parameters"]}
    assert {"cursor", "take", "order", "blueprintId"} <= listed
    assert "clientSecret" not in str(document["components"]["schemas"]["OAuthConnectionOut"])
    ui = await client.get("/schema/swagger")
    assert ui.status_code == 200


async def test_values_postgresql_cannot_store_are_400s(client: httpx.AsyncClient, new_owner: Any) -> None:
    owner = await new_owner()
    skillset = (await client.post("/api/v1/skillset/create", json={"name": "S"}, headers=owner)).json()["id"]
    jsonl = {**owner, "Accept": "application/jsonl"}
    attempts = [
        client.get("/api/v1/skillset/a%00b/fetch", headers=owner),
        client.post("/api/v1/skillset/create", json={"name": "a\u0000b"}, headers=owner),
        client.post("/api/v1/blueprint/create", json={"name": "b", "meta": {"k": "\u0000"}}, headers=owner),
        client.get("/api/v1/integration/mcpserver/list?meta[a%00]=x", headers=owner),
        client.get("/api/v1/integration/mcpserver/list?blueprintId=%00", headers=jsonl),
        client.post(
            f"/api/v1/skillset/{skillset}/resource/create",
            json={"name": "r", "uri": "file:///r", "text": "x", "size": 2**40},
            headers=owner,
        ),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "bad_request"


async def test_a_skillset_never_grows_past_what_reaches_the_edge_in_one_message(
    client: httpx.AsyncClient, new_owner: Any, bus: Any
) -> None:
    """Regression: abilities of a few hundred KB each made the integration's snapshot larger than a
    NATS message, so the edge could not resolve it and every MCP request answered 503."""
    from skillrelay_common.schemas.registry import IntegrationSnapshot, ResolveIntegration
    from skillrelay_common.subjects import REGISTRY_INTEGRATION_RESOLVE

    owner = await new_owner()
    skillset = (await client.post("/api/v1/skillset/create", json={"name": "S"}, headers=owner)).json()["id"]
    integration = (
        await client.post(
            "/api/v1/integration/mcpserver/create", json={"name": "i", "skillsetId": skillset}, headers=owner
        )
    ).json()["id"]
    url = f"/api/v1/skillset/{skillset}/ability/create"
    answers = []
    for index in range(6):  # 6 x 200 KB > 1 MB
        ability = {
            "name": f"big{index}",
            "handler": {"type": "static", "content": [{"type": "text", "text": "x" * 200_000}]},
        }
        answers.append(await client.post(url, json=ability, headers=owner))
    statuses = [answer.status_code for answer in answers]
    assert statuses[:3] == [200, 200, 200] and 413 in statuses, statuses
    refused = answers[statuses.index(413)].json()
    assert refused["code"] == "payload_too_large" and "split it" in refused["message"]
    listed = (await client.get(f"/api/v1/skillset/{skillset}/ability/list?take=100", headers=owner)).json()
    assert len(listed["items"]) == statuses.count(200)
    first = answers[0].json()["id"]
    grown = await client.post(
        f"/api/v1/skillset/{skillset}/ability/{first}/update",
        json={"description": "y" * 200_000},
        headers=owner,
    )
    assert grown.status_code == 413
    described = await client.post(
        f"/api/v1/skillset/{skillset}/update", json={"description": "y" * 200_000}, headers=owner
    )
    assert described.status_code == 413
    snapshot = await bus.request(REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id=integration))
    assert isinstance(snapshot, IntegrationSnapshot), snapshot
    long_text = await client.post(
        f"/api/v1/integration/mcpserver/{integration}/update",
        json={"description": "z" * 70_000},
        headers=owner,
    )
    assert long_text.status_code == 400
