"""OAuth through the whole stack as processes (registry, auth, sessions, edge) with the owner's IdP on a
free port: the owner creates an OAuth connection and an integration over REST, the MCP SDK client logs
in and calls a tool; rotating the static token and changing the OAuth connection cut the client off."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from skillrelay_devstack.embedded import free_port
from skillrelay_devstack.stack import Stack, running_stack

from .conftest import (
    IDP_CLIENT_ID,
    IDP_CLIENT_SECRET,
    AppThread,
    HeadlessUser,
    IdentityProvider,
    MemoryStorage,
    ping,
    sdk_client,
    sdk_provider,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    port = free_port()
    provider = IdentityProvider(url=f"http://127.0.0.1:{port}")
    with AppThread(provider.app(), port):
        yield provider


@pytest.fixture
def oauth_whole_stack(nats_url: str, database_url: str, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(
        tmp_path / "state",
        nats_url=nats_url,
        database_url=database_url,
        log_dir=tmp_path / "logs",
        extra_env={"SKILLRELAY_ALLOW_PRIVATE_HTTP_TARGETS": "1"},  # the IdP listens on 127.0.0.1
    ) as running:
        yield running


async def test_owner_sets_up_oauth_over_rest_and_the_sdk_client_gets_in(
    oauth_whole_stack: Stack, idp: IdentityProvider
) -> None:
    stack = oauth_whole_stack
    idp.redirect_uris.add(f"{stack.auth_url}/oauth/callback")
    async with httpx.AsyncClient(base_url=stack.registry_url, timeout=10) as registry:
        user = await registry.post(
            "/api/v1/user/create",
            json={"name": f"owner-{uuid.uuid4().hex[:6]}"},
            headers={"authorization": f"Bearer {stack.admin_token}"},
        )
        registry.headers["authorization"] = f"Bearer {user.json()['apiKey']}"
        skillset = (await registry.post("/api/v1/skillset/create", json={"name": "tools"})).json()["id"]
        await registry.post(
            f"/api/v1/skillset/{skillset}/ability/create",
            json={
                "name": "hello",
                "handler": {"type": "static", "content": [{"type": "text", "text": "hi"}]},
            },
        )
        connections = []
        for name in ("first", "second"):
            created = await registry.post(
                "/api/v1/oauth/connection/create",
                json={
                    "name": name,
                    "clientId": IDP_CLIENT_ID,
                    "clientSecret": IDP_CLIENT_SECRET,
                    "scopes": ["openid", "email"],
                    "issuer": idp.url,
                },
            )
            assert created.status_code == 200, created.text
            connections.append(created.json()["id"])
        created = await registry.post(
            "/api/v1/integration/mcpserver/create",
            json={"name": "oauth", "skillsetId": skillset, "oAuthConnectionId": connections[0]},
        )
        assert created.status_code == 200, created.text
        integration, static_token, endpoint = (created.json()[k] for k in ("id", "accessToken", "endpoint"))

        server_url = f"{endpoint}?authorization={static_token}"
        storage = MemoryStorage()
        person = HeadlessUser(idp.url)
        provider = sdk_provider(server_url, person, storage, client_name="whole-stack client")
        async with sdk_client(server_url, provider) as client:
            called = await client.call_tool("hello", {})
            assert called.content[0].text == "hi"  # type: ignore[union-attr]
        await person.browser.aclose()
        assert storage.tokens is not None
        access = storage.tokens.access_token

        async with httpx.AsyncClient(timeout=10) as raw:
            assert (await ping(raw, server_url, access)).status_code == 200
            # Rotating the static token: the JWT alone no longer gets in.
            rotated = await registry.post(
                f"/api/v1/integration/mcpserver/{integration}/token/rotate", json={}
            )
            assert rotated.status_code == 200
            assert (await ping(raw, server_url, access)).status_code == 401
            server_url = f"{endpoint}?authorization={rotated.json()['accessToken']}"
            assert (await ping(raw, server_url, access)).status_code == 200
            # Changing the OAuth connection invalidates every JWT issued before.
            updated = await registry.post(
                f"/api/v1/integration/mcpserver/{integration}/update",
                json={"oAuthConnectionId": connections[1]},
            )
            assert updated.status_code == 200, updated.text
            status = 200
            for _ in range(50):  # the edge learns the change from the registry's event
                status = (await ping(raw, server_url, access)).status_code
                if status == 401:
                    break
                await asyncio.sleep(0.1)
            assert status == 401
