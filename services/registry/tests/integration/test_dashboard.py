"""The dashboard over the real registry app, PostgreSQL and NATS (auth and sessions are the fakes of
``conftest.py``): sign-in, CSRF, security headers, the forms and their validation feedback, the token
shown once, rotation, sessions, owner isolation. The browser click-through is in
``tests/e2e/test_dashboard_browser.py``."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from .conftest import FakeSessionStore, FakeTokenAuthority, NewOwner

CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


async def sign_in(client: AsyncTestClient[Any], api_key: str) -> str:
    """Signs in through the form; returns the CSRF token of the signed-in session."""
    page = await client.get("/dashboard/signin")
    response = await client.post(
        "/dashboard/signin", data={"_csrf": csrf_of(page.text), "apiKey": api_key}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard/skillsets"
    return csrf_of((await client.get("/dashboard/skillsets")).text)


def api_key_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def test_pages_carry_security_headers_and_a_strict_cookie(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/dashboard/signin")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/dashboard" in cookie
    assert '<label for="f-apiKey">API key</label>' in response.text
    static = await client.get("/dashboard/static/htmx.min.js")
    assert static.status_code == 200 and "htmx" in static.text


async def test_sign_in_needs_the_csrf_token_and_a_valid_key(
    client: AsyncTestClient[Any], new_owner: NewOwner
) -> None:
    api_key = api_key_of(await new_owner("alice"))
    page = await client.get("/dashboard/signin")
    refused = await client.post("/dashboard/signin", data={"apiKey": api_key}, follow_redirects=False)
    assert refused.status_code == 403
    wrong_origin = await client.post(
        "/dashboard/signin",
        data={"apiKey": api_key, "_csrf": csrf_of(page.text)},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert wrong_origin.status_code == 403
    bad_key = await client.post(
        "/dashboard/signin", data={"apiKey": "sr_key_wrong", "_csrf": csrf_of(page.text)}
    )
    assert bad_key.status_code == 401 and "not valid" in bad_key.text
    assert (await client.get("/dashboard/skillsets", follow_redirects=False)).status_code == 303

    csrf = await sign_in(client, api_key)
    cookie_value = client.cookies.get("skillrelay_dashboard") or ""
    assert cookie_value and api_key not in cookie_value
    assert csrf != csrf_of(page.text)  # a fresh session on sign-in
    listing = await client.get("/dashboard/skillsets")
    assert listing.status_code == 200 and "Signed in as <strong" in listing.text
    assert ">alice</strong>" in listing.text  # the user's name, not its id

    out = await client.post("/dashboard/signout", data={"_csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert (await client.get("/dashboard/skillsets", follow_redirects=False)).status_code == 303


async def test_htmx_requests_use_the_csrf_header(client: AsyncTestClient[Any], new_owner: NewOwner) -> None:
    csrf = await sign_in(client, api_key_of(await new_owner()))
    without = await client.post(
        "/dashboard/skillsets", data={"name": "x"}, headers={"HX-Request": "true"}, follow_redirects=False
    )
    assert without.status_code == 403
    created = await client.post(
        "/dashboard/skillsets",
        data={"name": "via htmx", "description": ""},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
        follow_redirects=False,
    )
    assert created.status_code == 303
    assert created.headers["location"].startswith("/dashboard/skillsets/skillset_")


async def test_skillset_and_ability_forms_give_the_rest_apis_validation_feedback(
    client: AsyncTestClient[Any], new_owner: NewOwner
) -> None:
    csrf = await sign_in(client, api_key_of(await new_owner()))
    empty = await client.post("/dashboard/skillsets", data={"_csrf": csrf, "name": " "})
    assert empty.status_code == 422 and "name must not be empty" in empty.text

    created = await client.post(
        "/dashboard/skillsets", data={"_csrf": csrf, "name": "Greetings"}, follow_redirects=False
    )
    skillset_path = created.headers["location"]
    base = f"{skillset_path}/abilities"

    not_json = await client.post(
        base, data={"_csrf": csrf, "name": "greet", "inputSchema": "{", "handler": "{}"}
    )
    assert not_json.status_code == 422 and "not valid JSON" in not_json.text
    bad_schema = await client.post(
        base,
        data={
            "_csrf": csrf,
            "name": "greet",
            "inputSchema": '{"type": "object", "properties": {"name": {"type": 5}}}',
            "handler": '{"type": "static", "content": [{"type": "text", "text": "hi"}]}',
        },
    )
    assert bad_schema.status_code == 422
    assert "inputSchema is not a valid JSON Schema" in bad_schema.text
    assert 'aria-invalid="true"' in bad_schema.text

    live = await client.post(
        "/dashboard/validate/inputSchema/inputSchema",
        data={"inputSchema": '{"type": "array"}'},
        headers={"X-CSRF-Token": csrf},
    )
    assert 'must be a JSON Schema with "type": "object"' in html.unescape(live.text)
    live_ok = await client.post(
        "/dashboard/validate/handler/handler",
        data={"handler": '{"type": "static", "content": [{"type": "text", "text": "hi"}]}'},
        headers={"X-CSRF-Token": csrf},
    )
    assert "valid" in live_ok.text and "✗" not in live_ok.text

    good = await client.post(
        base,
        data={
            "_csrf": csrf,
            "name": "greet",
            "description": "Says hello",
            "inputSchema": '{"type": "object", "properties": {"name": {"type": "string"}}}',
            "handler": '{"type": "static", "content": [{"type": "text", "text": "Hello, {{name}}!"}]}',
        },
        follow_redirects=False,
    )
    assert good.status_code == 303, good.text
    page = await client.get(skillset_path)
    assert "greet" in page.text and "Says hello" in page.text
    assert '<p class="notice-ok" role="status">Created.</p>' in page.text
    assert "notice-ok" not in (await client.get(skillset_path)).text  # shown once
    ability_path = re.search(r'href="(/dashboard/skillsets/[^"]+/abilities/ability_[^"/]+)"', page.text)
    assert ability_path
    edit = await client.get(ability_path.group(1))
    assert "Hello, {{name}}!" in edit.text  # the stored handler, escaped, in the form

    deleted = await client.post(
        f"{ability_path.group(1)}/delete", data={"_csrf": csrf}, follow_redirects=False
    )
    assert deleted.status_code == 303
    assert "No abilities yet" in (await client.get(skillset_path)).text


async def test_owners_see_only_their_own_records(client: AsyncTestClient[Any], new_owner: NewOwner) -> None:
    alice, bob = api_key_of(await new_owner("alice")), api_key_of(await new_owner("bob"))
    csrf = await sign_in(client, alice)
    created = await client.post(
        "/dashboard/skillsets", data={"_csrf": csrf, "name": "alice-only"}, follow_redirects=False
    )
    path = created.headers["location"]
    integration = await client.post(
        "/dashboard/integrations",
        data={"_csrf": csrf, "name": "alice-server", "skillsetId": path.rsplit("/", 1)[1]},
        follow_redirects=False,
    )
    integration_path = integration.headers["location"].removesuffix("/token")
    found = await client.get("/dashboard/search", params={"q": "ALICE-"})
    assert "alice-only" in found.text and "alice-server" in found.text  # case-insensitive
    assert (
        "0 found" in (await client.get("/dashboard/search", params={"q": "alice%only"})).text
    )  # % is literal
    bob_csrf = await sign_in(client, bob)
    assert "0 found" in (await client.get("/dashboard/search", params={"q": "alice"})).text
    assert "alice-only" not in (await client.get("/dashboard/skillsets")).text
    assert "alice-server" not in (await client.get("/dashboard/integrations")).text
    foreign = await client.get(path)
    assert foreign.status_code == 404 and "skillset not found" in foreign.text
    for attempt in (
        client.get(integration_path),
        client.get(f"{integration_path}/audit/stream"),
        client.post(f"{integration_path}/rotate", data={"_csrf": bob_csrf}),
        client.post(f"{integration_path}/delete", data={"_csrf": bob_csrf}),
        client.post(f"{path}/delete", data={"_csrf": bob_csrf}),
    ):
        assert (await attempt).status_code == 404


async def test_integration_token_is_shown_once_then_rotated_and_sessions_can_be_ended(
    client: AsyncTestClient[Any],
    new_owner: NewOwner,
    token_authority: FakeTokenAuthority,
    session_store: FakeSessionStore,
) -> None:
    csrf = await sign_in(client, api_key_of(await new_owner()))
    skillset = await client.post(
        "/dashboard/skillsets", data={"_csrf": csrf, "name": "tools"}, follow_redirects=False
    )
    skillset_id = skillset.headers["location"].rsplit("/", 1)[1]
    shown = await client.post(
        "/dashboard/integrations",
        data={"_csrf": csrf, "name": "My Server", "skillsetId": skillset_id, "sessionMode": "strict"},
        follow_redirects=True,
    )
    assert shown.status_code == 200, shown.text
    integration_id = next(iter(token_authority.tokens))
    token = token_authority.tokens[integration_id][0]
    assert token in shown.text and "shown only this once" in shown.text
    shown_text = html.unescape(shown.text)
    assert '"mcpServers"' in shown_text and f'"Authorization": "Bearer {token}"' in shown_text
    assert shown.headers["cache-control"] == "no-store"

    assert shown.url.path == f"/dashboard/integrations/{integration_id}/token"  # reached by a redirect
    assert token not in str(shown.url) and "skillrelay_token" not in client.cookies
    again = await client.get(f"/dashboard/integrations/{integration_id}/token")
    assert again.status_code == 200 and token not in again.text and "was shown once" in again.text

    detail = await client.get(f"/dashboard/integrations/{integration_id}")
    assert detail.status_code == 200 and token not in detail.text
    assert "No live sessions" in detail.text

    rotated = await client.post(
        f"/dashboard/integrations/{integration_id}/rotate", data={"_csrf": csrf}, follow_redirects=True
    )
    new_token = token_authority.tokens[integration_id][0]
    assert new_token != token and new_token in rotated.text and token not in rotated.text
    assert "was shown once" in (await client.get(f"/dashboard/integrations/{integration_id}/token")).text

    session = session_store.add(integration_id)
    detail = await client.get(f"/dashboard/integrations/{integration_id}")
    assert session.session_id[:10] in detail.text
    ended = await client.post(
        f"/dashboard/integrations/{integration_id}/sessions/{session.session_id}/delete",
        data={"_csrf": csrf},
        follow_redirects=False,
    )
    assert ended.status_code == 303 and session.session_id not in session_store.sessions

    confirm = await client.get(f"/dashboard/integrations/{integration_id}/delete")
    assert "Delete the integration" in confirm.text
    gone = await client.post(
        f"/dashboard/integrations/{integration_id}/delete", data={"_csrf": csrf}, follow_redirects=False
    )
    assert gone.status_code == 303 and integration_id in token_authority.revoked
    assert (await client.get(f"/dashboard/integrations/{integration_id}")).status_code == 404


@pytest.mark.parametrize("path", ["/dashboard/skillsets/skillset_x/unknown/new"])
async def test_unknown_pages_are_404(client: AsyncTestClient[Any], new_owner: NewOwner, path: str) -> None:
    await sign_in(client, api_key_of(await new_owner()))
    assert (await client.get(path)).status_code == 404


async def test_resources_prompts_and_oauth_connections_are_managed_through_forms(
    client: AsyncTestClient[Any], new_owner: NewOwner
) -> None:
    csrf = await sign_in(client, api_key_of(await new_owner()))
    created = await client.post(
        "/dashboard/skillsets", data={"_csrf": csrf, "name": "docs"}, follow_redirects=False
    )
    skillset_path = created.headers["location"]

    resource = await client.post(
        f"{skillset_path}/resources",
        data={
            "_csrf": csrf,
            "name": "readme",
            "uri": "docs://readme",
            "mimeType": "text/plain",
            "text": "Hi",
        },
        follow_redirects=False,
    )
    assert resource.status_code == 303, resource.text
    both = await client.post(
        f"{skillset_path}/resources",
        data={"_csrf": csrf, "name": "bad", "uri": "docs://a", "uriTemplate": "docs://{b}", "text": "x"},
    )
    assert both.status_code == 422 and "The form has a problem" in both.text
    prompt = await client.post(
        f"{skillset_path}/prompts",
        data={
            "_csrf": csrf,
            "name": "review",
            "arguments": '[{"name": "code", "required": true}]',
            "messages": '[{"role": "user", "content": {"type": "text", "text": "Review {{code}}"}}]',
        },
        follow_redirects=False,
    )
    assert prompt.status_code == 303, prompt.text
    wrong_kind = await client.post(
        f"{skillset_path}/prompts",
        data={"_csrf": csrf, "name": "w", "handler": '{"type": "static", "content": []}'},
    )
    assert wrong_kind.status_code == 422 and "expected one of http, worker" in wrong_kind.text
    page = (await client.get(skillset_path)).text
    assert "docs://readme" in page and "review" in page and ">code<" not in page and "code" in page

    connection = await client.post(
        "/dashboard/connections",
        data={
            "_csrf": csrf,
            "name": "corp idp",
            "clientId": "client-1",
            "clientSecret": "very-secret-value",
            "scopes": "openid email",
            "issuer": "https://idp.example.com",
        },
        follow_redirects=False,
    )
    assert connection.status_code == 303, connection.text
    listing = (await client.get("/dashboard/connections")).text
    assert "corp idp" in listing and "openid email" in listing and "very-secret-value" not in listing
    path = re.search(r'href="(/dashboard/connections/oauthconnection_[^"/]+)"', listing)
    assert path
    edit = await client.get(path.group(1))
    assert "very-secret-value" not in edit.text and "client-1" in edit.text
    kept = await client.post(
        path.group(1),
        data={
            "_csrf": csrf,
            "name": "corp idp 2",
            "clientId": "client-1",
            "clientSecret": "",  # keeps the stored secret
            "scopes": "openid",
            "issuer": "https://idp.example.com",
        },
        follow_redirects=False,
    )
    assert kept.status_code == 303, kept.text
    assert "corp idp 2" in (await client.get("/dashboard/connections")).text
    removed = await client.post(f"{path.group(1)}/delete", data={"_csrf": csrf}, follow_redirects=False)
    assert removed.status_code == 303
    assert "No OAuth connections yet" in (await client.get("/dashboard/connections")).text


async def test_lists_page_by_a_hundred(client: AsyncTestClient[Any], new_owner: NewOwner) -> None:
    headers = await new_owner()
    for number in range(101):
        response = await client.post(
            "/api/v1/skillset/create", json={"name": f"set-{number:03}"}, headers=headers
        )
        assert response.status_code == 200
    await sign_in(client, api_key_of(headers))
    first = (await client.get("/dashboard/skillsets")).text
    assert "set-000" in first and "set-099" in first and "set-100" not in first
    next_link = re.search(r'href="(/dashboard/skillsets\?cursor=[^"]+)">Next page', first)
    assert next_link
    second = (await client.get(html.unescape(next_link.group(1)))).text
    assert "set-100" in second and "set-099" not in second and "First page" in second
    assert "Next page" not in second
    assert (await client.get("/dashboard/skillsets?cursor=bogus")).status_code == 400
