"""Worker credentials through the whole stack: REST at the registry, kept by the real auth service,
and let onto the bus (auth callout) by the same auth service."""

from __future__ import annotations

import asyncio
import html
import re

import httpx
import nats
import nats.errors
import pytest

from skillrelay_common import bus_auth
from skillrelay_devstack.stack import Stack
from skillrelay_worker.credential import WorkerCredential

pytestmark = pytest.mark.slow


def owner(stack: Stack, name: str) -> tuple[httpx.Client, str]:
    registry = httpx.Client(base_url=stack.registry_url, timeout=20)
    user = registry.post(
        "/api/v1/user/create",
        json={"name": name},
        headers={"authorization": f"Bearer {stack.admin_token}"},
    )
    assert user.status_code in (200, 201), user.text
    registry.headers["authorization"] = f"Bearer {user.json()['apiKey']}"
    return registry, user.json()["id"]


async def connects(url: str, credential: str) -> bool:
    parsed = WorkerCredential.parse(credential)
    try:
        nc = await nats.connect(
            bus_auth.with_user(url, parsed.credential_id, parsed.secret),
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=5,
        )
    except nats.errors.Error:
        return False
    await nc.close()
    return True


def test_an_owner_manages_worker_credentials_and_only_its_own(stack: Stack, nats_plain_url: str) -> None:
    alice, alice_id = owner(stack, "alice")
    bob, _ = owner(stack, "bob")

    created = alice.post("/api/v1/worker/credential/create", json={"name": "billing worker"})
    assert created.status_code == 200, created.text
    body = created.json()
    credential = WorkerCredential.parse(body["credential"])
    assert credential.owner_id == alice_id and credential.credential_id == body["id"]
    assert asyncio.run(connects(nats_plain_url, body["credential"]))

    listed = alice.get("/api/v1/worker/credential/list").json()["items"]
    assert [item["id"] for item in listed] == [body["id"]]
    assert listed[0]["name"] == "billing worker" and "createdAt" in listed[0]
    fetched = alice.get(f"/api/v1/worker/credential/{body['id']}/fetch")
    assert fetched.status_code == 200 and credential.secret not in fetched.text
    assert "credential" not in fetched.json()

    # Another owner sees nothing, and cannot rotate or delete it (404 like a missing one).
    assert bob.get("/api/v1/worker/credential/list").json()["items"] == []
    assert bob.get(f"/api/v1/worker/credential/{body['id']}/fetch").status_code == 404
    assert bob.post(f"/api/v1/worker/credential/{body['id']}/rotate", json={}).status_code == 404
    assert bob.post(f"/api/v1/worker/credential/{body['id']}/delete", json={}).status_code == 404
    assert alice.get("/api/v1/worker/credential/workercredential_nope/fetch").status_code == 404
    assert alice.get("/api/v1/worker/credential/a.b/fetch").status_code == 404

    rotated = alice.post(f"/api/v1/worker/credential/{body['id']}/rotate", json={})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["id"] == body["id"] and rotated.json()["credential"] != body["credential"]
    assert not asyncio.run(connects(nats_plain_url, body["credential"]))
    assert asyncio.run(connects(nats_plain_url, rotated.json()["credential"]))
    assert alice.get(f"/api/v1/worker/credential/{body['id']}/fetch").json()["rotatedAt"]

    deleted = alice.post(f"/api/v1/worker/credential/{body['id']}/delete", json={})
    assert deleted.status_code == 200 and deleted.json() == {"id": body["id"]}
    assert not asyncio.run(connects(nats_plain_url, rotated.json()["credential"]))
    assert alice.get(f"/api/v1/worker/credential/{body['id']}/fetch").status_code == 404
    assert alice.get("/api/v1/worker/credential/list").json()["items"] == []


BAD_BODIES = [
    {},
    {"name": ""},
    {"name": "   "},
    {"name": "x" * 201},
    {"name": "a\u0000b"},
    {"name": 3},
    {"name": "w", "extra": 1},
]


def test_bad_worker_credential_input_answers_400_and_needs_an_api_key(stack: Stack) -> None:
    alice, _ = owner(stack, "alice")
    for payload in BAD_BODIES:
        answer = alice.post("/api/v1/worker/credential/create", json=payload)
        assert answer.status_code == 400, (payload, answer.text)
    assert alice.get("/api/v1/worker/credential/list").json()["items"] == []
    anonymous = httpx.Client(base_url=stack.registry_url, timeout=10)
    assert anonymous.post("/api/v1/worker/credential/create", json={"name": "w"}).status_code == 401
    assert anonymous.get("/api/v1/worker/credential/list").status_code == 401


CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def test_the_dashboard_shows_a_credential_once_rotates_and_deletes_it(
    stack: Stack, nats_plain_url: str
) -> None:
    api, _ = owner(stack, "carol")
    browser = httpx.Client(base_url=stack.registry_url, timeout=20, follow_redirects=True)
    page = browser.get("/dashboard/signin")
    api_key = api.headers["authorization"].removeprefix("Bearer ")
    signed_in = browser.post("/dashboard/signin", data={"_csrf": csrf(page.text), "apiKey": api_key})
    assert signed_in.status_code == 200

    workers = browser.get("/dashboard/workers")
    assert workers.status_code == 200 and "No worker credentials yet" in workers.text
    refused = browser.post("/dashboard/workers", data={"_csrf": csrf(workers.text), "name": " "})
    assert refused.status_code == 422

    shown = browser.post("/dashboard/workers", data={"_csrf": csrf(workers.text), "name": "nightly"})
    assert shown.status_code == 200, shown.text
    credential = re.search(r'id="worker-credential" class="secret">([^<]+)<', shown.text)
    assert credential, shown.text
    assert asyncio.run(connects(nats_plain_url, html.unescape(credential.group(1))))
    credential_id = WorkerCredential.parse(html.unescape(credential.group(1))).credential_id
    # Shown once: the same page again no longer has it.
    again = browser.get(f"/dashboard/workers/{credential_id}/credential")
    assert again.status_code == 200 and credential.group(1) not in again.text

    confirm = browser.get(f"/dashboard/workers/{credential_id}/rotate")
    rotated = browser.post(f"/dashboard/workers/{credential_id}/rotate", data={"_csrf": csrf(confirm.text)})
    new = re.search(r'id="worker-credential" class="secret">([^<]+)<', rotated.text)
    assert new and new.group(1) != credential.group(1)
    assert not asyncio.run(connects(nats_plain_url, html.unescape(credential.group(1))))

    confirm = browser.get(f"/dashboard/workers/{credential_id}/delete")
    deleted = browser.post(f"/dashboard/workers/{credential_id}/delete", data={"_csrf": csrf(confirm.text)})
    assert deleted.status_code == 200 and "No worker credentials yet" in deleted.text
    assert api.get("/api/v1/worker/credential/list").json()["items"] == []


def csrf(page: str) -> str:
    match = CSRF.search(page)
    assert match, "page has no CSRF field"
    return match.group(1)
