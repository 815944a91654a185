"""Skillset sources over the real app, database and NATS: create, list, fetch, update, delete and
refresh of ``openapi`` sources read from a local HTTP service, the validation errors, encrypted headers,
the events, and the snapshot the edge receives."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.abilities import McpSourceHandler, OpenApiHandler
from skillrelay_common.schemas.base import NotFound, Ok
from skillrelay_common.schemas.registry import (
    IntegrationSnapshot,
    RefreshSource,
    ResolveIntegration,
    SourceResourceUpdated,
)
from skillrelay_common.subjects import (
    REGISTRY_INTEGRATION_RESOLVE,
    REGISTRY_SOURCE_REFRESH,
    REGISTRY_SOURCE_RESOURCE_UPDATED,
)
from skillrelay_devstack.embedded import free_port
from skillrelay_devstack.pet_api import API_KEY, PetApi, pet_document
from skillrelay_devstack.testing import until
from skillrelay_devstack.upstream import UpstreamServer
from skillrelay_registry.app import create_app

from .conftest import ADMIN_TOKEN, FakeSessionStore, FakeTokenAuthority, registry_settings, running
from .test_dashboard import sign_in


@pytest.fixture
async def local_client(
    nats_url: str, database_url: str, token_authority: FakeTokenAuthority, session_store: FakeSessionStore
) -> AsyncIterator[httpx.AsyncClient]:
    """The registry as an operator runs it next to loopback upstreams (private targets allowed), with a
    periodic refresh every second."""
    settings = dataclasses.replace(
        registry_settings(nats_url, database_url), allow_private_http_targets=True, source_refresh_seconds=1
    )
    app = create_app(settings)
    async with (
        running(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test") as http,
    ):
        yield http


async def _owner(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post(
        "/api/v1/user/create", json={"name": "o"}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['apiKey']}"}


async def _skillset(client: httpx.AsyncClient, owner: dict[str, str]) -> str:
    created = await client.post("/api/v1/skillset/create", json={"name": "S"}, headers=owner)
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


async def _own_ability(client: httpx.AsyncClient, owner: dict[str, str], skillset_id: str, name: str) -> None:
    own = {"name": name, "inputSchema": {"type": "object"}, "handler": {"type": "static", "content": []}}
    created = await client.post(f"/api/v1/skillset/{skillset_id}/ability/create", json=own, headers=owner)
    assert created.is_success, created.text


def _openapi_body(pet_api: PetApi, **extra: Any) -> dict[str, Any]:
    return {
        "type": "openapi",
        "document": pet_document(),
        "baseUrl": pet_api.url,
        "headers": {"X-Api-Key": API_KEY},
        **extra,
    }


async def test_openapi_source_lifecycle_with_encrypted_headers_events_and_snapshot(
    local_client: httpx.AsyncClient, pet_api: PetApi, database_url: str, events: Any, bus: Bus
) -> None:
    client = local_client
    owner = await _owner(client)
    skillset_id = await _skillset(client, owner)
    base = f"/api/v1/skillset/{skillset_id}/source"
    # The skillset's own ability keeps its name: the source's item of the same name is left out.
    await _own_ability(client, owner, skillset_id, "pet_getPet")

    created = await client.post(
        f"{base}/create", json=_openapi_body(pet_api, prefix="pet_", exclude=["removePet"]), headers=owner
    )
    assert created.status_code == 200, created.text
    source_id = created.json()["id"]
    assert source_id.startswith("source_")
    event = await events.wait_for("events.registry.source.created", lambda e: e["item_id"] == source_id)
    assert event["entity"] == "source" and event["skillset_id"] == skillset_id and API_KEY not in str(event)

    fetched = (await client.get(f"{base}/{source_id}/fetch", headers=owner)).json()
    assert fetched["status"] == "ok" and fetched["name"] == "Pet shelf" and fetched["type"] == "openapi"
    # uploadPetsCsv takes a CSV body (not callable as JSON), removePet is excluded.
    assert fetched["tools"] == ["pet_listPets", "pet_addPet", "pet_getPet"]
    assert fetched["headerNames"] == ["X-Api-Key"] and fetched["hasDocument"] is True
    assert "lastRefreshAt" in fetched and "lastError" not in fetched
    listed = (await client.get(f"{base}/list", headers=owner)).json()
    assert [item["id"] for item in listed["items"]] == [source_id]
    assert API_KEY not in str(listed) and API_KEY not in str(fetched)
    conn = await asyncpg.connect(database_url)
    try:
        stored = dict(await conn.fetchrow("SELECT * FROM registry.sources WHERE id = $1", source_id))
    finally:
        await conn.close()
    assert API_KEY not in str(stored) and stored["headers_encrypted"]

    # The edge's snapshot: the source with its headers in clear, its operations as abilities.
    integration = await client.post(
        "/api/v1/integration/mcpserver/create", json={"name": "I", "skillsetId": skillset_id}, headers=owner
    )
    resolved = await bus.request(
        REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id=integration.json()["id"])
    )
    assert isinstance(resolved, IntegrationSnapshot)
    snapshot = resolved.skillset
    assert [(s.id, s.type, s.base_url, s.headers) for s in snapshot.sources] == [
        (source_id, "openapi", pet_api.url, {"X-Api-Key": API_KEY})
    ]
    abilities = {a.name: a for a in snapshot.abilities}
    assert set(abilities) == {"pet_getPet", "pet_listPets", "pet_addPet"}
    assert not isinstance(abilities["pet_getPet"].handler, OpenApiHandler)  # the skillset's own
    add = abilities["pet_addPet"]
    assert isinstance(add.handler, OpenApiHandler)
    assert (add.handler.method, add.handler.path, add.handler.has_body) == ("POST", "/pets", True)
    assert add.input_schema["required"] == ["body"]
    assert add.input_schema["properties"]["body"]["properties"]["tag"]["type"] == ["string", "null"]
    assert add.output_schema is not None and add.output_schema["required"] == ["id", "name"]
    listing = abilities["pet_listPets"]
    assert isinstance(listing.handler, OpenApiHandler)
    assert [(p.name, p.location) for p in listing.handler.parameters] == [
        ("limit", "query"),
        ("X-Request-Tag", "header"),
    ]
    assert listing.annotations == {"readOnlyHint": True}
    pets = listing.output_schema["properties"]["pets"]  # type: ignore[index]
    assert pets["items"]["required"] == ["id", "name"]  # the $ref inlined

    # Update: only getPet, under another prefix; the skillset changes, so the edge reloads.
    updated = await client.post(
        f"{base}/{source_id}/update", json={"include": ["get*"], "prefix": "shelf."}, headers=owner
    )
    assert updated.status_code == 200, updated.text
    changed = await events.wait_for("events.registry.source.updated", lambda e: e["item_id"] == source_id)
    assert changed["revision"] > event["revision"]
    assert (await client.get(f"{base}/{source_id}/fetch", headers=owner)).json()["tools"] == ["shelf.getPet"]

    deleted = await client.post(f"{base}/{source_id}/delete", json={}, headers=owner)
    assert deleted.status_code == 200
    await events.wait_for("events.registry.source.deleted", lambda e: e["item_id"] == source_id)
    assert (await client.get(f"{base}/{source_id}/fetch", headers=owner)).status_code == 404
    assert (await client.get(f"{base}/list", headers=owner)).json()["items"] == []


async def test_openapi_source_read_from_a_url_refreshed_on_demand_periodically_and_over_nats(
    local_client: httpx.AsyncClient, pet_api: PetApi, events: Any, bus: Bus
) -> None:
    client = local_client
    owner = await _owner(client)
    skillset_id = await _skillset(client, owner)
    base = f"/api/v1/skillset/{skillset_id}/source"
    # The served document names no server: the base URL must be given.
    without_base = await client.post(
        f"{base}/create", json={"type": "openapi", "url": pet_api.document_url}, headers=owner
    )
    assert without_base.status_code == 400 and "baseUrl" in without_base.json()["message"]
    created = await client.post(
        f"{base}/create",
        json={"type": "openapi", "url": pet_api.document_url, "baseUrl": pet_api.url, "name": "pets"},
        headers=owner,
    )
    assert created.status_code == 200, created.text
    source_id = created.json()["id"]
    first = (await client.get(f"{base}/{source_id}/fetch", headers=owner)).json()
    assert first["status"] == "ok" and first["hasDocument"] is False and len(first["tools"]) == 4

    # The upstream drops an operation: a refresh picks it up and tells the edges.
    del pet_api.document["paths"]["/pets/{petId}"]["delete"]
    refreshed = await client.post(f"{base}/{source_id}/refresh", json={}, headers=owner)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["tools"] == ["listPets", "addPet", "getPet"]
    assert refreshed.json()["lastRefreshAt"] >= first["lastRefreshAt"]
    await events.wait_for("events.registry.source.updated", lambda e: e["item_id"] == source_id)

    # The upstream breaks: the source keeps what it had and says why.
    pet_api.document = {"openapi": "2.0"}
    broken = (await client.post(f"{base}/{source_id}/refresh", headers=owner)).json()
    assert broken["status"] == "error" and "OpenAPI 3.0 and 3.1" in broken["lastError"]
    assert broken["tools"] == ["listPets", "addPet", "getPet"]

    # Periodic refresh (every second here) and a refresh asked for over NATS read it again.
    pet_api.document = pet_document()
    reads = sum(1 for r in pet_api.requests if r["path"] == "/openapi.json")
    await until(lambda: sum(1 for r in pet_api.requests if r["path"] == "/openapi.json") > reads, timeout=20)

    async def healed() -> bool:
        body = (await client.get(f"{base}/{source_id}/fetch", headers=owner)).json()
        return bool(body["status"] == "ok" and len(body["tools"]) == 4)

    assert await _eventually(healed)
    assert isinstance(await bus.request(REGISTRY_SOURCE_REFRESH, RefreshSource(source_id=source_id)), Ok)
    missing = await bus.request(REGISTRY_SOURCE_REFRESH, RefreshSource(source_id="source_nope"))
    assert isinstance(missing, NotFound)


async def _eventually(check: Callable[[], Awaitable[bool]], attempts: int = 200) -> bool:
    """Whether ``check`` holds within ``attempts`` tries 0.1 s apart (it asks over HTTP)."""
    for _ in range(attempts):
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_openapi_documents_in_yaml_are_read_but_not_with_aliases(
    local_client: httpx.AsyncClient, pet_api: PetApi
) -> None:
    owner = await _owner(local_client)
    skillset_id = await _skillset(local_client, owner)
    base = f"/api/v1/skillset/{skillset_id}/source"
    body = {"type": "openapi", "url": f"{pet_api.url}/openapi.yaml", "baseUrl": pet_api.url}
    created = await local_client.post(f"{base}/create", json=body, headers=owner)
    assert created.status_code == 200, created.text
    source = (await local_client.get(f"{base}/{created.json()['id']}/fetch", headers=owner)).json()
    assert source["status"] == "ok" and source["name"] == "Pet shelf" and len(source["tools"]) == 4

    pet_api.yaml_document = "openapi: 3.1.0\na: &a [1, 2]\nb: [*a, *a]\npaths: {}\n"
    laughs = (await local_client.post(f"{base}/{created.json()['id']}/refresh", headers=owner)).json()
    assert laughs["status"] == "error" and "aliases" in laughs["lastError"]
    pet_api.yaml_document = "openapi: [unclosed"
    broken = (await local_client.post(f"{base}/{created.json()['id']}/refresh", headers=owner)).json()
    assert "neither JSON nor YAML" in broken["lastError"] and len(broken["tools"]) == 4


async def test_mcp_source_whose_upstream_is_down_is_kept_with_its_error(
    local_client: httpx.AsyncClient, events: Any
) -> None:
    owner = await _owner(local_client)
    skillset_id = await _skillset(local_client, owner)
    url = f"http://127.0.0.1:{free_port()}/mcp"  # nothing listens there
    created = await local_client.post(
        f"/api/v1/skillset/{skillset_id}/source/create",
        json={
            "type": "mcp",
            "url": url,
            "headers": {"Authorization": "Bearer upstream-secret"},
            "timeoutMs": 2000,
        },
        headers=owner,
    )
    assert created.status_code == 200, created.text
    source = (
        await local_client.get(
            f"/api/v1/skillset/{skillset_id}/source/{created.json()['id']}/fetch", headers=owner
        )
    ).json()
    assert source["status"] == "error" and source["lastError"] and source["tools"] == []
    assert source["url"] == url and source["name"] == "127.0.0.1" and "upstream-secret" not in str(source)


async def test_source_input_errors_are_clear_4xx(
    client: httpx.AsyncClient, local_client: httpx.AsyncClient, new_owner: Any, pet_api: PetApi
) -> None:
    owner = await new_owner()
    skillset_id = await _skillset(client, owner)
    base = f"/api/v1/skillset/{skillset_id}/source"
    document = pet_document(pet_api.url)
    bad_bodies: list[tuple[dict[str, Any], str]] = [
        ({"url": "http://x.example/mcp"}, "type"),
        ({"type": "grpc", "url": "http://x.example/mcp"}, "type"),
        ({"type": "mcp"}, "url is required"),
        ({"type": "mcp", "url": "ftp://x.example/mcp"}, "http"),
        ({"type": "mcp", "url": "http://x.example/mcp", "document": document}, "openapi sources only"),
        ({"type": "openapi"}, "either document or url"),
        (
            {"type": "openapi", "document": document, "url": "http://x.example/o.json"},
            "either document or url",
        ),
        ({"type": "openapi", "document": {"openapi": "2.0", "paths": {}}}, "baseUrl"),
        ({"type": "openapi", "document": {"swagger": "2.0"}, "baseUrl": "http://x.example"}, "OpenAPI 3.0"),
        ({"type": "openapi", "document": {"openapi": "3.1.0"}, "baseUrl": "http://x.example"}, "paths"),
        ({"type": "mcp", "url": "http://x.example/mcp", "headers": {"Host": "a"}}, "set by Skillrelay"),
        ({"type": "mcp", "url": "http://x.example/mcp", "headers": {"X-A": "a\r\nB: c"}}, "line break"),
        ({"type": "mcp", "url": "http://x.example/mcp", "headers": {"bad header": "a"}}, "header name"),
        ({"type": "mcp", "url": "http://x.example/mcp", "prefix": "has space"}, "prefix"),
        ({"type": "mcp", "url": "http://x.example/mcp", "include": ["a b"]}, "include"),
        ({"type": "mcp", "url": "http://x.example/mcp", "timeoutMs": 5}, "timeoutMs"),
        ({"type": "mcp", "url": "http://x.example/mcp", "nonsense": 1}, "nonsense"),
        ({"type": "mcp", "url": "http://x.example/mcp", "name": " "}, "name"),
    ]
    for body, expected in bad_bodies:
        response = await client.post(f"{base}/create", json=body, headers=owner)
        assert response.status_code == 400, (body, response.text)
        assert expected in response.json()["message"], (body, response.json())
    # Without the operator's setting, a loopback upstream is refused as http abilities are.
    refused = await client.post(
        f"{base}/create",
        json={"type": "openapi", "url": pet_api.document_url, "baseUrl": pet_api.url},
        headers=owner,
    )
    assert refused.status_code == 400 and "refused" in refused.json()["message"]
    refused = await client.post(
        f"{base}/create", json={"type": "mcp", "url": "http://127.0.0.1:9/mcp"}, headers=owner
    )
    assert refused.status_code == 400 and "refused" in refused.json()["message"]
    # Another owner's skillset and unknown sources are 404; nothing was stored by the refusals.
    other = await new_owner("other")
    assert (
        await client.post(f"{base}/create", json=_openapi_body(pet_api), headers=other)
    ).status_code == 404
    for call in ("fetch", "update", "delete", "refresh"):
        method = "GET" if call == "fetch" else "POST"
        response = await client.request(method, f"{base}/source_nope/{call}", json={}, headers=owner)
        assert response.status_code == 404, (call, response.text)
    assert (await client.get(f"{base}/list", headers=owner)).json()["items"] == []
    # Updates are checked the same way, and a source's type cannot change.
    created = await local_client.post(f"{base}/create", json=_openapi_body(pet_api), headers=owner)
    assert created.status_code == 200, created.text
    source_id = created.json()["id"]
    for body, expected in [
        ({"type": "mcp"}, "type"),
        ({"url": pet_api.document_url}, "either document or url"),
        ({"headers": {"Content-Length": "1"}}, "set by Skillrelay"),
    ]:
        response = await local_client.post(f"{base}/{source_id}/update", json=body, headers=owner)
        assert response.status_code == 400, (body, response.text)
        assert expected in response.json()["message"], (body, response.json())


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer("federated") as server:
        yield server


async def test_mcp_source_reads_the_upstreams_tools_resources_and_prompts(
    local_client: httpx.AsyncClient, upstream: UpstreamServer, events: Any, bus: Bus
) -> None:
    client = local_client
    owner = await _owner(client)
    skillset_id = await _skillset(client, owner)
    base = f"/api/v1/skillset/{skillset_id}/source"
    created = await client.post(
        f"{base}/create",
        json={
            "type": "mcp",
            "url": upstream.url,
            "headers": {"Authorization": "Bearer upstream-secret"},
            "prefix": "up_",
            "exclude": ["slow", "upstream://items/*"],
        },
        headers=owner,
    )
    assert created.status_code == 200, created.text
    source_id = created.json()["id"]
    source = (await client.get(f"{base}/{source_id}/fetch", headers=owner)).json()
    assert source["status"] == "ok", source
    assert {"up_echo", "up_add", "up_count", "up_ask_name", "up_whoami"} <= set(source["tools"])
    assert "up_slow" not in source["tools"] and all(name.startswith("up_") for name in source["tools"])
    assert source["resources"] == ["upstream://greeting"] and source["prompts"] == ["up_greet"]
    assert "upstream-secret" not in str(source) and source["headerNames"] == ["Authorization"]

    integration = await client.post(
        "/api/v1/integration/mcpserver/create", json={"name": "I", "skillsetId": skillset_id}, headers=owner
    )
    resolved = await bus.request(
        REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id=integration.json()["id"])
    )
    assert isinstance(resolved, IntegrationSnapshot)
    snapshot = resolved.skillset
    assert [(s.type, s.url, s.headers) for s in snapshot.sources] == [
        ("mcp", upstream.url, {"Authorization": "Bearer upstream-secret"})
    ]
    add = next(a for a in snapshot.abilities if a.name == "up_add")
    assert add.handler == McpSourceHandler(source_id=source_id, name="add")
    assert add.input_schema["required"] == ["a", "b"] and add.output_schema is not None
    greeting = next(r for r in snapshot.resources if r.uri == "upstream://greeting")
    assert greeting.handler == McpSourceHandler(source_id=source_id, name="upstream://greeting")
    assert greeting.mime_type == "text/plain"
    (greet,) = snapshot.prompts
    assert greet.name == "up_greet" and [a.name for a in greet.arguments] == ["name"]

    # Include templates again: an update that changes what the source brings reloads the edges.
    updated = await client.post(f"{base}/{source_id}/update", json={"exclude": ["slow"]}, headers=owner)
    assert updated.status_code == 200
    await events.wait_for("events.registry.source.updated", lambda e: e["item_id"] == source_id)
    refreshed = (await client.post(f"{base}/{source_id}/refresh", headers=owner)).json()
    assert refreshed["resources"] == ["upstream://greeting", "upstream://items/{item_id}"]
    assert refreshed["status"] == "ok"


async def test_dashboard_lists_sources_with_status_and_tools_adds_refreshes_and_deletes(
    local_client: httpx.AsyncClient, pet_api: PetApi
) -> None:
    client = local_client
    owner = await _owner(client)
    csrf = await sign_in(client, owner["Authorization"].removeprefix("Bearer "))  # type: ignore[arg-type]
    skillset_id = await _skillset(client, owner)
    page = f"/dashboard/sources/{skillset_id}"
    assert f'href="{page}"' in (await client.get(f"/dashboard/skillsets/{skillset_id}")).text
    assert "No sources yet." in (await client.get(page)).text

    refused = await client.post(page, data={"_csrf": csrf, "type": "openapi", "url": pet_api.document_url})
    assert refused.status_code == 422 and "baseUrl is needed" in html.unescape(refused.text)
    headers = json.dumps({"X-Api-Key": API_KEY})
    added = await client.post(
        page,
        data={
            "_csrf": csrf,
            "type": "openapi",
            "url": pet_api.document_url,
            "baseUrl": pet_api.url,
            "headers": headers,
            "exclude": "removePet, addPet",
        },
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    listed = (await client.get(page)).text
    assert "Pet shelf" in listed and "status-ok" in listed and "2 tools" in listed
    assert "<code>getPet</code>" in listed and API_KEY not in listed

    listing = await client.get(f"/api/v1/skillset/{skillset_id}/source/list", headers=owner)
    (source,) = listing.json()["items"]
    # Editing: the form shows the source without its headers; emptying exclude brings every tool back.
    edit = await client.get(f"{page}/{source['id']}")
    assert edit.status_code == 200 and "removePet addPet" in edit.text and API_KEY not in edit.text
    bad = await client.post(f"{page}/{source['id']}", data={"_csrf": csrf, "prefix": "no spaces please"})
    assert bad.status_code == 422 and "prefix must be" in html.unescape(bad.text)
    saved = await client.post(
        f"{page}/{source['id']}",
        data={"_csrf": csrf, "exclude": "", "prefix": "pet_"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    fetched = await client.get(f"/api/v1/skillset/{skillset_id}/source/{source['id']}/fetch", headers=owner)
    assert fetched.json()["exclude"] == [] and len(fetched.json()["tools"]) == 4
    assert fetched.json()["headerNames"] == ["X-Api-Key"]  # an empty headers box keeps them
    pet_api.document = {"openapi": "2.0"}
    refreshed = await client.post(
        f"{page}/{source['id']}/refresh", data={"_csrf": csrf}, follow_redirects=False
    )
    assert refreshed.status_code == 303
    failed = html.unescape((await client.get(page)).text)
    assert "status-error" in failed and "only OpenAPI 3.0 and 3.1 documents are supported" in failed

    confirm = await client.get(f"{page}/{source['id']}/delete")
    assert "Delete the source" in html.unescape(confirm.text)
    deleted = await client.post(f"{page}/{source['id']}/delete", data={"_csrf": csrf}, follow_redirects=False)
    assert deleted.status_code == 303
    assert "No sources yet." in (await client.get(page)).text
    # Without the CSRF token nothing happens.
    assert (await client.post(page, data={"type": "mcp", "url": "http://x.example/mcp"})).status_code == 403


async def test_a_name_clash_is_reported_in_the_source_s_warnings(
    local_client: httpx.AsyncClient, pet_api: PetApi
) -> None:
    """Two sources (and the skillset's own ability) exposing the same tool name: the later one's item
    is left out of the skillset, and its source says so in ``warnings`` (fetch, list, dashboard)."""
    client = local_client
    owner = await _owner(client)
    await sign_in(client, owner["Authorization"].removeprefix("Bearer "))  # type: ignore[arg-type]
    skillset_id = await _skillset(client, owner)
    base = f"/api/v1/skillset/{skillset_id}/source"
    await _own_ability(client, owner, skillset_id, "pet_getPet")
    first = await client.post(f"{base}/create", json=_openapi_body(pet_api, prefix="pet_"), headers=owner)
    second = await client.post(
        f"{base}/create",
        json=_openapi_body(pet_api, name="Second shelf", prefix="pet_", include=["listPets", "getPet"]),
        headers=owner,
    )
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    first_id, second_id = first.json()["id"], second.json()["id"]

    by_own = "tool 'pet_getPet' left out: the skillset's own ability already exposes it"
    by_first = f"tool 'pet_listPets' left out: source 'Pet shelf' ({first_id}) already exposes it"
    fetched = (await client.get(f"{base}/{first_id}/fetch", headers=owner)).json()
    assert fetched["warnings"] == [by_own] and "pet_getPet" in fetched["tools"]
    fetched = (await client.get(f"{base}/{second_id}/fetch", headers=owner)).json()
    assert fetched["warnings"] == [by_first, by_own]
    listed = (await client.get(f"{base}/list", headers=owner)).json()["items"]
    assert {item["id"]: item["warnings"] for item in listed} == {
        first_id: [by_own],
        second_id: [by_first, by_own],
    }
    refreshed = (await client.post(f"{base}/{second_id}/refresh", headers=owner)).json()
    assert refreshed["warnings"] == [by_first, by_own]
    page = html.unescape((await client.get(f"/dashboard/sources/{skillset_id}")).text)
    assert by_first in page and by_own in page

    # The first source gone, the second brings listPets: only the own ability's clash remains.
    assert (await client.post(f"{base}/{first_id}/delete", headers=owner)).is_success
    fetched = (await client.get(f"{base}/{second_id}/fetch", headers=owner)).json()
    assert fetched["warnings"] == [by_own]


async def test_an_upstreams_resource_update_becomes_a_resource_event_of_its_skillset(
    local_client: httpx.AsyncClient, upstream: UpstreamServer, events: Any, bus: Bus
) -> None:
    """``registry.source.resource_updated`` (an edge heard ``resources/updated`` from the upstream): a
    ``resource`` ``updated`` event of the source's skillset with the URI, no revision bump; repeats
    within a second are one (every replica watching the upstream asks); unknown sources and URIs the
    source does not bring are NotFound."""
    owner = await _owner(local_client)
    skillset_id = await _skillset(local_client, owner)
    created = await local_client.post(
        f"/api/v1/skillset/{skillset_id}/source/create",
        json={"type": "mcp", "url": upstream.url},
        headers=owner,
    )
    assert created.status_code == 200, created.text
    source_id = created.json()["id"]
    revision = (await local_client.get(f"/api/v1/skillset/{skillset_id}/fetch", headers=owner)).json()[
        "revision"
    ]

    notice = SourceResourceUpdated(source_id=source_id, uri="upstream://greeting")
    assert isinstance(await bus.request(REGISTRY_SOURCE_RESOURCE_UPDATED, notice), Ok)
    assert isinstance(
        await bus.request(REGISTRY_SOURCE_RESOURCE_UPDATED, notice), Ok
    )  # the same notice again
    event = await events.wait_for(
        "events.registry.resource.updated", lambda e: e["skillset_id"] == skillset_id
    )
    assert event["uri"] == "upstream://greeting" and event["revision"] == revision
    assert event["item_id"] == f"{source_id}:upstream://greeting"
    await asyncio.sleep(0.5)
    repeats = [
        payload
        for subject, payload in events.received
        if subject == "events.registry.resource.updated" and payload["skillset_id"] == skillset_id
    ]
    assert len(repeats) == 1

    for source, uri in ((source_id, "upstream://not-brought"), ("source_nope", "upstream://greeting")):
        answer = await bus.request(
            REGISTRY_SOURCE_RESOURCE_UPDATED, SourceResourceUpdated(source_id=source, uri=uri)
        )
        assert isinstance(answer, NotFound), (source, uri)
