"""The whole OAuth flow with the official MCP Python SDK as the client: discovery from the edge's 401,
dynamic registration, login at the upstream IdP, consent, token, MCP calls, refresh, revocation."""

from __future__ import annotations

import time

import httpx

from skillrelay_common.messaging import Bus

from .conftest import (
    CLIENT_DOCUMENT_URL,
    REDIRECT_URI,
    HeadlessUser,
    MemoryStorage,
    OAuthStack,
    ping,
    sdk_client,
    sdk_provider,
    static_token,
)


async def test_sdk_client_discovers_registers_logs_in_calls_refreshes_and_is_revoked(
    oauth_stack: OAuthStack, bus: Bus
) -> None:
    integration = oauth_stack.add_integration()
    token = await static_token(bus, integration.id)
    server_url = f"{oauth_stack.mcp_url(integration.id)}?authorization={token}"
    storage = MemoryStorage()
    user = HeadlessUser(oauth_stack.idp.url)
    provider = sdk_provider(server_url, user, storage, client_name="SDK test client")
    async with sdk_client(server_url, provider) as client:
        tools = await client.list_tools()
        assert "echo" in {tool.name for tool in tools.tools}
        called = await client.call_tool("echo", {"message": "hi"})
        assert called.content[0].text == "echo: hi"  # type: ignore[union-attr]

        # Logged in once, with consent, and the redirect carried iss (RFC 9207) and state.
        assert len(user.results) == 1 and user.results[0].consent_shown
        login = user.results[0]
        assert login.params["iss"] == oauth_stack.issuer(integration.id)
        assert login.consent_headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in login.consent_headers["content-security-policy"]
        assert storage.client is not None and storage.client.client_secret  # registered (RFC 7591)
        first = storage.tokens
        assert first is not None and first.refresh_token
        claims = _claims(first.access_token)
        assert claims["aud"] == oauth_stack.mcp_url(integration.id)
        assert claims["iss"] == oauth_stack.issuer(integration.id)
        assert claims["sub"] == "alice" and claims["client_id"] == storage.client.client_id
        assert claims["exp"] - claims["iat"] <= 600

        # Expire the access token on the client side: the SDK refreshes (rotation) and carries on.
        provider.context.token_expiry_time = time.time() - 1
        called = await client.call_tool("echo", {"message": "again"})
        assert called.content[0].text == "echo: again"  # type: ignore[union-attr]
        second = storage.tokens
        assert second is not None and second.access_token != first.access_token
        assert second.refresh_token and second.refresh_token != first.refresh_token
        assert len(user.results) == 1  # no second login

    await user.browser.aclose()
    # Revocation (RFC 7009) of the access token: the edge refuses it at once.
    async with httpx.AsyncClient(timeout=10) as raw:
        mcp = await ping(raw, server_url, second.access_token)
        assert mcp.status_code != 401
        revoked = await raw.post(
            f"{oauth_stack.issuer(integration.id)}/revoke",
            data={"token": second.access_token, "token_type_hint": "access_token"},
            auth=(storage.client.client_id, storage.client.client_secret or ""),
        )
        assert revoked.status_code == 200
        refused = await ping(raw, server_url, second.access_token, request_id=2)
        assert refused.status_code == 401
        assert 'resource_metadata="' in refused.headers["www-authenticate"]
        # Revoking the refresh token ends the grant: no more refreshes.
        revoked = await raw.post(
            f"{oauth_stack.issuer(integration.id)}/revoke",
            data={"token": second.refresh_token},
            auth=(storage.client.client_id, storage.client.client_secret or ""),
        )
        assert revoked.status_code == 200
        refresh = await raw.post(
            f"{oauth_stack.issuer(integration.id)}/token",
            data={"grant_type": "refresh_token", "refresh_token": second.refresh_token},
            auth=(storage.client.client_id, storage.client.client_secret or ""),
        )
        assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


async def test_sdk_client_with_a_client_id_metadata_document(oauth_stack: OAuthStack, bus: Bus) -> None:
    oauth_stack.documents.documents[CLIENT_DOCUMENT_URL] = {
        "client_id": CLIENT_DOCUMENT_URL,
        "client_name": "Document client",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    }
    integration = oauth_stack.add_integration()
    token = await static_token(bus, integration.id)
    server_url = f"{oauth_stack.mcp_url(integration.id)}?authorization={token}"
    storage = MemoryStorage()
    user = HeadlessUser(oauth_stack.idp.url)
    provider = sdk_provider(
        server_url, user, storage, client_metadata_url=CLIENT_DOCUMENT_URL, token_endpoint_auth_method="none"
    )
    async with sdk_client(server_url, provider) as client:
        called = await client.call_tool("echo", {"message": "doc"})
        assert called.content[0].text == "echo: doc"  # type: ignore[union-attr]
    await user.browser.aclose()
    assert storage.client is not None and storage.client.client_id == CLIENT_DOCUMENT_URL
    assert oauth_stack.documents.fetches >= 1
    assert (
        storage.tokens is not None
        and _claims(storage.tokens.access_token)["client_id"] == CLIENT_DOCUMENT_URL
    )


def _claims(token: str) -> dict[str, object]:
    import jwt

    return dict(jwt.decode(token, options={"verify_signature": False}))
