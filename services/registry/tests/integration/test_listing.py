"""Listing integrations: cursor pages (stable while others insert), order, filters, JSON lines over more
items than a page, and isolation between owners."""

import asyncio
import json
from typing import Any

import httpx

LIST = "/api/v1/integration/mcpserver/list"


async def _create(
    client: httpx.AsyncClient, owner: dict[str, str], skillset: str, name: str, **extra: Any
) -> str:
    response = await client.post(
        "/api/v1/integration/mcpserver/create",
        json={"name": name, "skillsetId": skillset, **extra},
        headers=owner,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def _owner_with_skillset(
    client: httpx.AsyncClient, new_owner: Any, name: str
) -> tuple[dict[str, str], str]:
    owner = await new_owner(name)
    skillset = (await client.post("/api/v1/skillset/create", json={"name": "S"}, headers=owner)).json()["id"]
    return owner, skillset


async def _all_pages(client: httpx.AsyncClient, owner: dict[str, str], query: str) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        url = f"{LIST}?{query}" + (f"&cursor={cursor}" if cursor else "")
        body = (await client.get(url, headers=owner)).json()
        pages.append([item["id"] for item in body["items"]])
        cursor = body.get("cursor")
        if cursor is None:
            return pages


async def test_pages_orders_and_filters(client: httpx.AsyncClient, new_owner: Any) -> None:
    owner, skillset = await _owner_with_skillset(client, new_owner, "a")
    blueprint = (await client.post("/api/v1/blueprint/create", json={"name": "B"}, headers=owner)).json()[
        "id"
    ]
    made = []
    for index in range(7):
        meta = {"env": "prod" if index % 2 else "dev", "team": {"name": f"t{index % 3}"}, "n": index}
        extra: dict[str, Any] = {"meta": meta}
        if index < 3:
            extra["blueprintId"] = blueprint
        made.append(await _create(client, owner, skillset, f"i{index}", **extra))

    default = (await client.get(LIST, headers=owner)).json()
    assert [item["id"] for item in default["items"]] == made[::-1] and "cursor" not in default
    assert await _all_pages(client, owner, "take=3") == [made[6:3:-1], made[3:0:-1], made[:1]]
    assert await _all_pages(client, owner, "take=3&order=asc") == [made[:3], made[3:6], made[6:]]
    exact = await _all_pages(client, owner, "take=7")
    assert exact == [made[::-1]]

    assert await _all_pages(client, owner, f"blueprintId={blueprint}&order=asc") == [made[:3]]
    prod = await _all_pages(client, owner, "meta[env]=prod&order=asc")
    assert prod == [[made[1], made[3], made[5]]]
    nested = await _all_pages(client, owner, "meta[team][name]=t1&meta[env]=dev&order=asc&take=1")
    assert nested == [[made[4]]]
    assert await _all_pages(client, owner, "meta[n]=6") == [[made[6]]]
    assert await _all_pages(client, owner, "meta[env]=staging") == [[]]

    for bad in ("take=0", "take=101", "take=x", "order=sideways", "cursor=bm9wZQ", "meta=1"):
        response = await client.get(f"{LIST}?{bad}", headers=owner)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["code"] == "bad_request"


async def test_cursor_pages_are_stable_while_others_insert(client: httpx.AsyncClient, new_owner: Any) -> None:
    owner, skillset = await _owner_with_skillset(client, new_owner, "a")
    for index in range(12):
        await _create(client, owner, skillset, f"old{index}")

    for order in ("desc", "asc"):
        # What exists before this client starts paging, in the server's order.
        everything = await client.get(
            f"{LIST}?order={order}", headers={**owner, "Accept": "application/jsonl"}
        )
        existing = [json.loads(line)["data"]["id"] for line in everything.text.splitlines()]
        seen: list[str] = []
        first_page: list[str] = []
        cursor: str | None = None
        inserted = 0
        while True:
            url = f"{LIST}?take=4&order={order}" + (f"&cursor={cursor}" if cursor else "")
            # Another client inserts while this one pages: the page and the inserts race.
            page, *_ = await asyncio.gather(
                client.get(url, headers=owner),
                *(_create(client, owner, skillset, f"new-{order}-{inserted}-{k}") for k in range(2)),
            )
            inserted += 1
            body = page.json()
            seen.extend(item["id"] for item in body["items"])
            first_page = first_page or [item["id"] for item in body["items"]]
            cursor = body.get("cursor")
            if cursor is None or len(seen) > 100:
                break
        assert len(seen) == len(set(seen)), "an item appeared twice"
        assert [item for item in seen if item in existing] == existing, "an existing item was skipped"
        if order == "desc":
            # Newer items sort before the cursor: only the first page (racing the inserts) may show one.
            assert all(item in first_page for item in seen if item not in existing)


async def test_jsonl_streams_every_matching_item(client: httpx.AsyncClient, new_owner: Any) -> None:
    owner, skillset = await _owner_with_skillset(client, new_owner, "a")
    other, other_skillset = await _owner_with_skillset(client, new_owner, "b")
    await _create(client, other, other_skillset, "not-mine")
    made = [
        await _create(
            client, owner, skillset, f"i{index}", meta={"parity": "even" if index % 2 == 0 else "odd"}
        )
        for index in range(250)
    ]

    response = await client.get(LIST, headers={**owner, "Accept": "application/jsonl"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jsonl")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) == 250 and all(line["type"] == "item" for line in lines)
    assert [line["data"]["id"] for line in lines] == made[::-1]
    assert lines[0]["data"]["endpoint"].endswith(f"/{made[-1]}/mcp") and "accessToken" not in lines[0]["data"]

    ascending = await client.get(
        f"{LIST}?order=asc&meta[parity]=even", headers={**owner, "Accept": "application/jsonl"}
    )
    ids = [json.loads(line)["data"]["id"] for line in ascending.text.splitlines()]
    assert ids == made[::2]

    # Skillsets list the same way (one list implementation for every entity).
    skillsets = await client.get("/api/v1/skillset/list", headers={**owner, "Accept": "application/jsonl"})
    assert [json.loads(line)["data"]["id"] for line in skillsets.text.splitlines()] == [skillset]


async def test_owners_never_see_each_others_records(client: httpx.AsyncClient, new_owner: Any) -> None:
    alice, alice_skillset = await _owner_with_skillset(client, new_owner, "alice")
    bob, bob_skillset = await _owner_with_skillset(client, new_owner, "bob")
    alice_integration = await _create(client, alice, alice_skillset, "alice-mcp")
    bob_integration = await _create(client, bob, bob_skillset, "bob-mcp")
    ability = (
        await client.post(
            f"/api/v1/skillset/{alice_skillset}/ability/create",
            json={"name": "a", "handler": {"type": "worker", "subject": "a"}},
            headers=alice,
        )
    ).json()["id"]
    blueprint = (await client.post("/api/v1/blueprint/create", json={"name": "B"}, headers=alice)).json()[
        "id"
    ]
    connection = (
        await client.post(
            "/api/v1/oauth/connection/create",
            json={"name": "c", "clientId": "i", "clientSecret": "s", "issuer": "https://idp.example"},
            headers=alice,
        )
    ).json()["id"]

    assert [i["id"] for i in (await client.get(LIST, headers=bob)).json()["items"]] == [bob_integration]
    assert [s["id"] for s in (await client.get("/api/v1/skillset/list", headers=bob)).json()["items"]] == [
        bob_skillset
    ]
    foreign = [
        ("GET", f"/api/v1/integration/mcpserver/{alice_integration}/fetch"),
        ("POST", f"/api/v1/integration/mcpserver/{alice_integration}/update"),
        ("POST", f"/api/v1/integration/mcpserver/{alice_integration}/token/rotate"),
        ("POST", f"/api/v1/integration/mcpserver/{alice_integration}/delete"),
        ("GET", f"/api/v1/integration/mcpserver/{alice_integration}/session/list"),
        ("POST", f"/api/v1/integration/mcpserver/{alice_integration}/session/s/delete"),
        ("GET", f"/api/v1/skillset/{alice_skillset}/fetch"),
        ("POST", f"/api/v1/skillset/{alice_skillset}/update"),
        ("POST", f"/api/v1/skillset/{alice_skillset}/delete"),
        ("GET", f"/api/v1/skillset/{alice_skillset}/ability/list"),
        ("GET", f"/api/v1/skillset/{alice_skillset}/ability/{ability}/fetch"),
        ("POST", f"/api/v1/skillset/{alice_skillset}/ability/{ability}/delete"),
        ("GET", f"/api/v1/blueprint/{blueprint}/fetch"),
        ("POST", f"/api/v1/blueprint/{blueprint}/delete"),
        ("GET", f"/api/v1/oauth/connection/{connection}/fetch"),
        ("POST", f"/api/v1/oauth/connection/{connection}/delete"),
    ]
    for method, path in foreign:
        as_bob = await client.request(method, path, json={}, headers=bob)
        missing = await client.request(method, path.replace("_", "_zz", 1), json={}, headers=bob)
        assert as_bob.status_code == 404, (path, as_bob.text)
        assert (
            as_bob.json() == missing.json() or as_bob.json()["code"] == missing.json()["code"] == "not_found"
        )
    # Bob cannot point his records at Alice's either.
    steal = await client.post(
        f"/api/v1/integration/mcpserver/{bob_integration}/update",
        json={"skillsetId": alice_skillset},
        headers=bob,
    )
    assert steal.status_code == 404
    assert (
        await client.get(f"/api/v1/integration/mcpserver/{alice_integration}/fetch", headers=alice)
    ).status_code == 200
