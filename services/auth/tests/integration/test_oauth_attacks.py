"""Attacks on the authorization server over HTTP: each answers a clear 4xx (or an error redirect to a
verified redirect URI, as OAuth requires), never a 500."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import msgspec
import pytest

from skillrelay_auth.app import rotate_signing_key
from skillrelay_common.audit import read_records
from skillrelay_common.messaging import Bus, encode
from skillrelay_common.schemas.audit import AuditRecord
from skillrelay_common.schemas.auth import GetJwks, Jwks
from skillrelay_common.schemas.registry import IntegrationChanged, IntegrationInfo
from skillrelay_common.subjects import AUTH_JWKS_GET, INTEGRATION_UPDATED

from .conftest import OAuthStack, browse_authorization, ping, static_token

REDIRECT = "http://127.0.0.1:1/cb"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def register(
    http: httpx.AsyncClient, stack: OAuthStack, integration: IntegrationInfo, **extra: Any
) -> dict[str, Any]:
    body = {"redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"], **extra}
    answer = await http.post(f"{stack.issuer(integration.id)}/register", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def authorize_url(
    stack: OAuthStack, integration: IntegrationInfo, client: dict[str, Any], **params: str
) -> str:
    query = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": REDIRECT,
        "state": "st-1",
        "resource": stack.mcp_url(integration.id),
        **params,
    }
    return (
        f"{stack.issuer(integration.id)}/authorize?{urlencode({k: v for k, v in query.items() if v != ''})}"
    )


async def code_for(
    stack: OAuthStack, integration: IntegrationInfo, client: dict[str, Any], challenge: str
) -> str:
    async with httpx.AsyncClient(timeout=10) as browser:
        login = await browse_authorization(
            browser,
            authorize_url(stack, integration, client, code_challenge=challenge, code_challenge_method="S256"),
            stack.idp.url,
        )
    assert "code" in login.params, login
    return login.params["code"]


async def token_request(
    http: httpx.AsyncClient,
    stack: OAuthStack,
    integration: IntegrationInfo,
    client: dict[str, Any],
    **form: str,
) -> httpx.Response:
    return await http.post(
        f"{stack.issuer(integration.id)}/token",
        data=form,
        auth=(client["client_id"], client["client_secret"]),
    )


async def exchange(
    http: httpx.AsyncClient,
    stack: OAuthStack,
    integration: IntegrationInfo,
    client: dict[str, Any],
    **form: str,
) -> httpx.Response:
    data = {"grant_type": "authorization_code", "redirect_uri": REDIRECT, **form}
    return await token_request(http, stack, integration, client, **data)


async def refresh(
    http: httpx.AsyncClient,
    stack: OAuthStack,
    integration: IntegrationInfo,
    client: dict[str, Any],
    refresh_token: str,
    **form: str,
) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **form}
    return await token_request(http, stack, integration, client, **data)


async def granted(
    http: httpx.AsyncClient, oauth_stack: OAuthStack, integration: IntegrationInfo, client: dict[str, Any]
) -> dict[str, Any]:
    """The tokens of a new grant: a code with PKCE for ``client``, exchanged."""
    verifier, challenge = pkce()
    code = await code_for(oauth_stack, integration, client, challenge)
    exchanged = await exchange(http, oauth_stack, integration, client, code=code, code_verifier=verifier)
    return dict(exchanged.json())


async def test_metadata_documents(oauth_stack: OAuthStack, http: httpx.AsyncClient) -> None:
    integration = oauth_stack.add_integration()
    issuer = oauth_stack.issuer(integration.id)
    base = oauth_stack.auth_url
    for url in (
        f"{base}/.well-known/oauth-authorization-server/oauth/{integration.id}",
        f"{base}/.well-known/openid-configuration/oauth/{integration.id}",
        f"{issuer}/.well-known/openid-configuration",
    ):
        answer = await http.get(url, headers={"x-request-id": "metadata-req-1"})
        assert answer.headers["skillrelay-correlation-id"] == "metadata-req-1"  # request_log middleware
        document = answer.json()
        assert document["issuer"] == issuer
        assert document["code_challenge_methods_supported"] == ["S256"]
        assert document["authorization_response_iss_parameter_supported"] is True
        assert document["client_id_metadata_document_supported"] is True
    prm = (
        await http.get(
            f"{oauth_stack.edge_url}/.well-known/oauth-protected-resource/api/v1/integration/mcpserver/{integration.id}/mcp"
        )
    ).json()
    assert prm["resource"] == oauth_stack.mcp_url(integration.id)
    assert prm["authorization_servers"] == [issuer]
    jwks = (await http.get(f"{issuer}/jwks")).json()
    assert jwks["keys"] and all(k["kty"] == "EC" and "d" not in k and k["kid"] for k in jwks["keys"])
    static_only = oauth_stack.add_integration(oauth=False)
    missing = await http.get(f"{base}/.well-known/oauth-authorization-server/oauth/{static_only.id}")
    assert missing.status_code == 404
    unknown = await http.get(f"{base}/.well-known/oauth-authorization-server/oauth/mcpserver_nope")
    assert unknown.status_code == 404


async def test_registration_refuses_unsafe_redirect_uris(
    oauth_stack: OAuthStack, http: httpx.AsyncClient
) -> None:
    integration = oauth_stack.add_integration()
    for uris in (["http://evil.example/cb"], ["javascript:alert(1)"], ["https://x.example/cb#frag"], [], "x"):
        answer = await http.post(
            f"{oauth_stack.issuer(integration.id)}/register", json={"redirect_uris": uris}
        )
        assert answer.status_code == 400, uris
        assert answer.json()["error"] == "invalid_redirect_uri"
    bad_json = await http.post(f"{oauth_stack.issuer(integration.id)}/register", content=b"{nope")
    assert bad_json.status_code == 400


async def test_registration_refuses_text_postgresql_cannot_store(
    oauth_stack: OAuthStack, http: httpx.AsyncClient
) -> None:
    """Regression: a NUL in client_name reached PostgreSQL, which refused it: 500."""
    integration = oauth_stack.add_integration()
    issuer = oauth_stack.issuer(integration.id)
    for extra in (
        {"client_name": "a\x00b"},
        {"client_uri": "https://x.example/\x00"},
        {"software_id": "\x00"},
    ):
        answer = await http.post(f"{issuer}/register", json={"redirect_uris": [REDIRECT], **extra})
        assert answer.status_code == 400, (extra, answer.text)
        assert answer.json()["error"] == "invalid_client_metadata"
    lone_surrogate = b'{"redirect_uris": ["%s"], "client_name": "\\ud800"}' % REDIRECT.encode()
    answer = await http.post(
        f"{issuer}/register", content=lone_surrogate, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    fine = await http.post(f"{issuer}/register", json={"redirect_uris": [REDIRECT], "client_name": "Zoë ✓"})
    assert fine.status_code == 201, fine.text


async def test_redirect_uri_mismatch_is_shown_not_redirected(
    oauth_stack: OAuthStack, http: httpx.AsyncClient
) -> None:
    integration = oauth_stack.add_integration()
    client = await register(http, oauth_stack, integration)
    _, challenge = pkce()
    for redirect in ("http://127.0.0.1:1/cb/", "http://127.0.0.1:2/cb", "http://evil.example/cb"):
        url = authorize_url(
            oauth_stack,
            integration,
            client,
            redirect_uri=redirect,
            code_challenge=challenge,
            code_challenge_method="S256",
        )
        answer = await http.get(url)
        assert answer.status_code == 400 and "Location" not in answer.headers
        assert answer.headers["x-frame-options"] == "DENY"
    unknown_client = await http.get(authorize_url(oauth_stack, integration, {"client_id": "client_nope"}))
    assert unknown_client.status_code == 400


async def test_pkce_is_required_and_s256_only(oauth_stack: OAuthStack, http: httpx.AsyncClient) -> None:
    integration = oauth_stack.add_integration()
    client = await register(http, oauth_stack, integration)
    verifier, challenge = pkce()
    for params in (
        {},
        {"code_challenge": verifier, "code_challenge_method": "plain"},
        {"code_challenge": "short", "code_challenge_method": "S256"},
    ):
        answer = await http.get(authorize_url(oauth_stack, integration, client, **params))
        assert answer.status_code == 302
        location = answer.headers["Location"]
        assert location.startswith(REDIRECT + "?") and "error=invalid_request" in location
        assert "state=st-1" in location and "iss=" in location
    wrong_resource = await http.get(
        authorize_url(
            oauth_stack,
            integration,
            client,
            code_challenge=challenge,
            code_challenge_method="S256",
            resource="https://other.example/mcp",
        )
    )
    assert "error=invalid_target" in wrong_resource.headers["Location"]

    code = await code_for(oauth_stack, integration, client, challenge)
    missing = await exchange(http, oauth_stack, integration, client, code=code)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    code = await code_for(oauth_stack, integration, client, challenge)
    wrong = await exchange(
        http, oauth_stack, integration, client, code=code, code_verifier=secrets.token_urlsafe(48)
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    code = await code_for(oauth_stack, integration, client, challenge)
    other_redirect = await exchange(
        http,
        oauth_stack,
        integration,
        client,
        code=code,
        code_verifier=verifier,
        redirect_uri="http://127.0.0.1:1/other",
    )
    assert other_redirect.status_code == 400 and other_redirect.json()["error"] == "invalid_grant"


async def test_code_reuse_revokes_what_the_code_gave(
    oauth_stack: OAuthStack, http: httpx.AsyncClient
) -> None:
    integration = oauth_stack.add_integration()
    client = await register(http, oauth_stack, integration)
    verifier, challenge = pkce()
    code = await code_for(oauth_stack, integration, client, challenge)
    first = await exchange(http, oauth_stack, integration, client, code=code, code_verifier=verifier)
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    again = await exchange(http, oauth_stack, integration, client, code=code, code_verifier=verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    refreshed = await refresh(http, oauth_stack, integration, client, first.json()["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


async def test_refresh_reuse_revokes_the_family(
    oauth_stack: OAuthStack, http: httpx.AsyncClient, bus: Bus
) -> None:
    integration = oauth_stack.add_integration()
    token = await static_token(bus, integration.id)
    client = await register(http, oauth_stack, integration)
    tokens = await granted(http, oauth_stack, integration, client)
    token_url = f"{oauth_stack.issuer(integration.id)}/token"
    auth = (client["client_id"], client["client_secret"])
    rotated = await refresh(http, oauth_stack, integration, client, tokens["refresh_token"])
    assert rotated.status_code == 200
    newer = rotated.json()
    mcp_url = f"{oauth_stack.mcp_url(integration.id)}?authorization={token}"
    assert (await ping(http, mcp_url, newer["access_token"])).status_code == 200
    stolen = await refresh(http, oauth_stack, integration, client, tokens["refresh_token"])
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    # The legitimate holder's newer tokens are gone too: refresh token and (at the edge) access token.
    after = await refresh(http, oauth_stack, integration, client, newer["refresh_token"])
    assert after.status_code == 400
    assert (await ping(http, mcp_url, newer["access_token"])).status_code == 401
    wrong_secret = await http.post(
        token_url,
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(client["client_id"], "nope"),
    )
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    bad_grant = await http.post(token_url, data={"grant_type": "password"}, auth=auth)
    assert bad_grant.status_code == 400 and bad_grant.json()["error"] == "unsupported_grant_type"


async def test_edge_checks_audience_static_token_and_oauth_generation(
    oauth_stack: OAuthStack, http: httpx.AsyncClient, bus: Bus
) -> None:
    first, second = oauth_stack.add_integration(), oauth_stack.add_integration()
    statics = {}
    for integration in (first, second):
        statics[integration.id] = await static_token(bus, integration.id)
    client = await register(http, oauth_stack, first)
    access = (await granted(http, oauth_stack, first, client))["access_token"]
    first_url = f"{oauth_stack.mcp_url(first.id)}?authorization={statics[first.id]}"
    assert (await ping(http, first_url, access)).status_code == 200
    # Another integration's endpoint (wrong audience), even with that integration's static token.
    second_url = f"{oauth_stack.mcp_url(second.id)}?authorization={statics[second.id]}"
    assert (await ping(http, second_url, access)).status_code == 401
    # The JWT alone, or with a wrong static token, is not enough.
    assert (await ping(http, oauth_stack.mcp_url(first.id), access)).status_code == 401
    assert (
        await ping(http, f"{oauth_stack.mcp_url(first.id)}?authorization=sr_mcp_wrong", access)
    ).status_code == 401
    # Changing the OAuth connection bumps the generation: every JWT issued before stops working.
    oauth_stack.registry.integrations[first.id] = IntegrationInfo(
        **{**_fields(first), "o_auth_connection_id": "oauthconnection_1", "oauth_generation": 1}
    )
    event = IntegrationChanged(
        integration_id=first.id, owner_id=first.owner_id, change="updated", fields=["oAuthConnectionId"]
    )
    await bus.nc.publish(INTEGRATION_UPDATED.subject, encode(event))
    await bus.nc.flush()
    for _ in range(50):
        if (await ping(http, first_url, access)).status_code == 401:
            break
    assert (await ping(http, first_url, access)).status_code == 401


async def test_consent_form_is_bound_to_the_browser(oauth_stack: OAuthStack, http: httpx.AsyncClient) -> None:
    integration = oauth_stack.add_integration()
    client = await register(http, oauth_stack, integration, client_name="<script>alert(1)</script>")
    _, challenge = pkce()
    url = authorize_url(
        oauth_stack,
        integration,
        client,
        code_challenge=challenge,
        code_challenge_method="S256",
        prompt="consent",
    )
    async with httpx.AsyncClient(timeout=10) as browser:
        start = await browser.get(url)
        back = await browser.get((await browser.get(start.headers["Location"])).headers["Location"])
        assert back.status_code == 200 and "<script>alert" not in back.text and "&lt;script&gt;" in back.text
        import re

        request_id = re.search(r'name="request_id" value="([^"]+)"', back.text)
        assert request_id
        forged = await browser.post(
            f"{oauth_stack.auth_url}/oauth/consent",
            data={"request_id": request_id.group(1), "csrf": "0" * 64, "decision": "allow"},
        )
        assert forged.status_code == 403
    # A different browser (no binding cookie) cannot finish someone else's login either.
    stranger = await http.post(
        f"{oauth_stack.auth_url}/oauth/consent",
        data={"request_id": request_id.group(1), "csrf": "0" * 64, "decision": "allow"},
    )
    assert stranger.status_code == 403
    unknown_state = await http.get(f"{oauth_stack.auth_url}/oauth/callback?state=nope&code=x")
    assert unknown_state.status_code == 400


async def test_signing_key_rotation_keeps_live_tokens_valid(
    oauth_stack: OAuthStack, http: httpx.AsyncClient, bus: Bus
) -> None:
    integration = oauth_stack.add_integration()
    token = await static_token(bus, integration.id)
    client = await register(http, oauth_stack, integration)
    tokens = await granted(http, oauth_stack, integration, client)
    old_kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
    new_kid = await rotate_signing_key(oauth_stack.settings)
    assert new_kid != old_kid
    for _ in range(40):  # auth re-reads its keys within a second
        published = await bus.request(AUTH_JWKS_GET, GetJwks())
        assert isinstance(published, Jwks)
        if {old_kid, new_kid} <= {k["kid"] for k in published.keys}:
            break
        await asyncio.sleep(0.1)
    assert {old_kid, new_kid} <= {k["kid"] for k in published.keys}
    # New tokens are signed with the new key once it has been published for a moment.
    newer = tokens
    for _ in range(40):
        answer = await refresh(http, oauth_stack, integration, client, newer["refresh_token"])
        assert answer.status_code == 200
        newer = answer.json()
        if jwt.get_unverified_header(newer["access_token"])["kid"] == new_kid:
            break
        await asyncio.sleep(0.1)
    assert jwt.get_unverified_header(newer["access_token"])["kid"] == new_kid
    mcp_url = f"{oauth_stack.mcp_url(integration.id)}?authorization={token}"
    assert (await ping(http, mcp_url, newer["access_token"])).status_code == 200  # edge learns the new kid
    assert (await ping(http, mcp_url, tokens["access_token"])).status_code == 200  # old key still published


def _fields(info: IntegrationInfo) -> dict[str, Any]:
    return {name: getattr(info, name) for name in info.__struct_fields__}


async def test_consent_is_remembered_per_user_and_client_and_deny_is_reported(
    oauth_stack: OAuthStack, http: httpx.AsyncClient
) -> None:
    integration = oauth_stack.add_integration()
    client = await register(http, oauth_stack, integration, token_endpoint_auth_method="client_secret_post")
    verifier, challenge = pkce()
    pkce_params = {"code_challenge": challenge, "code_challenge_method": "S256"}
    async with httpx.AsyncClient(timeout=10) as browser:
        declined = await browse_authorization(
            browser,
            authorize_url(oauth_stack, integration, client, **pkce_params),
            oauth_stack.idp.url,
            allow=False,
        )
        assert declined.consent_shown and declined.params["error"] == "access_denied"
        assert declined.params["state"] == "st-1" and declined.params["iss"] == oauth_stack.issuer(
            integration.id
        )
        first = await browse_authorization(
            browser, authorize_url(oauth_stack, integration, client, **pkce_params), oauth_stack.idp.url
        )
        assert first.consent_shown and "code" in first.params
        again = await browse_authorization(
            browser, authorize_url(oauth_stack, integration, client, **pkce_params), oauth_stack.idp.url
        )
        assert not again.consent_shown and "code" in again.params  # remembered
        forced = await browse_authorization(
            browser,
            authorize_url(oauth_stack, integration, client, prompt="consent", **pkce_params),
            oauth_stack.idp.url,
        )
        assert forced.consent_shown
    # client_secret_post: the secret travels in the body; the contact is the same person each time.
    token_url = f"{oauth_stack.issuer(integration.id)}/token"
    form = {"grant_type": "authorization_code", "redirect_uri": REDIRECT, "code_verifier": verifier}
    secret = {"client_id": client["client_id"], "client_secret": client["client_secret"]}
    tokens = [
        (await http.post(token_url, data={**form, **secret, "code": login.params["code"]})).json()
        for login in (again, forced)
    ]
    contacts = {jwt.decode(t["access_token"], options={"verify_signature": False})["cid"] for t in tokens}
    assert len(contacts) == 1 and next(iter(contacts)).startswith("contact_")
    basic_instead = await http.post(
        token_url,
        data={**form, "code": first.params["code"]},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert basic_instead.status_code == 401 and basic_instead.json()["error"] == "invalid_client"


async def test_odd_input_never_gets_a_server_error(oauth_stack: OAuthStack, http: httpx.AsyncClient) -> None:
    integration = oauth_stack.add_integration()
    issuer = oauth_stack.issuer(integration.id)
    client = await register(
        http, oauth_stack, integration, client_uri={"not": "a string"}, logo_uri="x" * 5000
    )
    assert "client_uri" not in client and "logo_uri" not in client
    attempts = [
        http.get(f"{issuer}/authorize?client_id={client['client_id']}&state={'s' * 5000}"),
        http.get(f"{issuer}/authorize?client_id=a&client_id=b"),
        # Authlib quotes these in its error descriptions, where a quote or non-ASCII is not allowed.
        http.get(f"{issuer}/authorize?client_id={client['client_id']}&response_type=%22%C3%A9"),
        http.get(f"{issuer}/authorize?client_id={client['client_id']}&redirect_uri=http://127.0.0.1:1/%22"),
        http.post(f"{issuer}/token", data={"grant_type": '"\\é'}),
        http.get(f"{oauth_stack.auth_url}/oauth/{'x' * 300}/authorize"),
        http.get(f"{oauth_stack.auth_url}/oauth/callback"),
        http.post(f"{issuer}/token", json={"grant_type": "authorization_code"}),
        http.post(
            f"{issuer}/token", data={"grant_type": "authorization_code", "client_id": client["client_id"]}
        ),
        http.post(
            f"{issuer}/token", data={"grant_type": "refresh_token"}, headers={"Authorization": "Basic !!!"}
        ),
        http.post(
            f"{issuer}/token", data={"code": "x" * 10000}, auth=(client["client_id"], client["client_secret"])
        ),
        http.post(f"{issuer}/revoke", data={}, auth=(client["client_id"], client["client_secret"])),
        http.post(f"{issuer}/register", json=[1, 2]),
        http.post(f"{issuer}/register", json={"redirect_uris": [REDIRECT], "grant_types": "x"}),
        http.post(
            f"{issuer}/register",
            json={"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"},
        ),
        http.post(
            f"{oauth_stack.auth_url}/oauth/consent",
            content=b"\x00\xff",
            headers={"content-type": "text/plain"},
        ),
        http.post(f"{oauth_stack.auth_url}/oauth/consent", data={"request_id": "x", "decision": "allow"}),
    ]
    for attempt in attempts:
        answer = await attempt
        assert 400 <= answer.status_code < 500, (answer.request.url, answer.status_code, answer.text[:200])
    unknown = await http.post(
        f"{issuer}/revoke", data={"token": "nope"}, auth=(client["client_id"], client["client_secret"])
    )
    assert unknown.status_code == 200  # RFC 7009: unknown tokens are not an error


async def test_authlib_checks_at_the_token_and_revocation_endpoints(
    oauth_stack: OAuthStack, http: httpx.AsyncClient
) -> None:
    """Checks Authlib adds: a malformed code_verifier, a refresh that widens the scope, and revoking a
    token issued to another client (RFC 7009 section 2.1) are refused."""
    integration = oauth_stack.add_integration()
    client, other = (
        await register(http, oauth_stack, integration),
        await register(http, oauth_stack, integration),
    )
    auth = (client["client_id"], client["client_secret"])
    verifier, challenge = pkce()
    code = await code_for(oauth_stack, integration, client, challenge)
    malformed = await exchange(http, oauth_stack, integration, client, code=code, code_verifier="short")
    assert malformed.status_code == 400 and malformed.json()["error"] == "invalid_request"
    code = await code_for(oauth_stack, integration, client, challenge)
    tokens = (
        await exchange(http, oauth_stack, integration, client, code=code, code_verifier=verifier)
    ).json()
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "mcp"
    foreign = await http.post(
        f"{oauth_stack.issuer(integration.id)}/revoke",
        data={"token": tokens["refresh_token"]},
        auth=(other["client_id"], other["client_secret"]),
    )
    assert foreign.status_code == 400 and foreign.json()["error"] == "invalid_grant"
    odd_hint = await http.post(
        f"{oauth_stack.issuer(integration.id)}/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "id_token"},
        auth=auth,
    )
    assert odd_hint.status_code == 400 and odd_hint.json()["error"] == "unsupported_token_type"
    still = await refresh(http, oauth_stack, integration, client, tokens["refresh_token"])
    assert still.status_code == 200  # the other client's attempt did not revoke it
    own = await http.post(
        f"{oauth_stack.issuer(integration.id)}/revoke",
        data={"token": still.json()["refresh_token"], "token_type_hint": "refresh_token"},
        auth=auth,
    )
    assert own.status_code == 200
    gone = await refresh(http, oauth_stack, integration, client, still.json()["refresh_token"])
    assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant"
    code = await code_for(oauth_stack, integration, client, challenge)
    fresh = (await exchange(http, oauth_stack, integration, client, code=code, code_verifier=verifier)).json()
    wider = await refresh(http, oauth_stack, integration, client, fresh["refresh_token"], scope="mcp admin")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"


async def test_token_grants_and_refusals_are_audited_without_secrets(
    oauth_stack: OAuthStack, http: httpx.AsyncClient, bus: Bus
) -> None:
    integration = oauth_stack.add_integration()
    client = await register(http, oauth_stack, integration)
    verifier, challenge = pkce()
    code = await code_for(oauth_stack, integration, client, challenge)
    granted = await exchange(http, oauth_stack, integration, client, code=code, code_verifier=verifier)
    assert granted.status_code == 200
    replayed = await exchange(http, oauth_stack, integration, client, code=code, code_verifier=verifier)
    assert replayed.status_code == 400
    mismatched = await http.post(
        f"{oauth_stack.issuer(integration.id)}/token",
        data={"grant_type": "authorization_code", "code": "x", "client_id": "client_other"},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert mismatched.status_code == 400 and mismatched.json()["error"] == "invalid_request"

    async def audited() -> list[AuditRecord]:
        while True:
            records, _ = await read_records(bus, f"audit.{integration.id}.>", limit=100)
            found = [record for _, record in records]
            outcomes = {(r.data.kind, r.data.outcome) for r in found}
            wanted = {
                ("oauth.grant", "granted"),
                ("auth.failure", "invalid_grant"),
                ("oauth.grant", "revoked"),
            }
            if wanted | {("auth.failure", "invalid_request")} <= outcomes:
                return found
            await asyncio.sleep(0.05)  # polling the stream until the recorder has flushed

    found = await asyncio.wait_for(audited(), 15)
    grant = next(r for r in found if r.data.kind == "oauth.grant" and r.data.outcome == "granted")
    assert grant.data.principal == "oauth:alice" and grant.data.details.get("grant") == "authorization_code"
    raw = msgspec.json.encode(found).decode()
    tokens = granted.json()
    for secret in (code, verifier, client["client_secret"], tokens["access_token"], tokens["refresh_token"]):
        assert secret not in raw
