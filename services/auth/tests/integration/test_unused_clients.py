"""Registrations that were never used are purged after a while; clients in use stay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from skillrelay_auth.app import MIGRATIONS
from skillrelay_auth.models import oauth_clients
from skillrelay_auth.oauth_repo import ClientRecord, CodeRecord, OAuthStore, utcnow
from skillrelay_common.db import create_engine, migrate
from skillrelay_common.settings import DatabaseSettings


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    made = create_engine(DatabaseSettings(url=database_url))
    await migrate(made, "auth", MIGRATIONS)
    yield made
    await made.dispose()


def _client(client_id: str, kind: str = "registered") -> ClientRecord:
    return ClientRecord(
        client_id=client_id,
        integration_id="mcpserver_1",
        kind=kind,
        client_secret_hash=None,
        token_endpoint_auth_method="none",
        redirect_uris=["http://127.0.0.1/callback"],
        grant_types=["authorization_code", "refresh_token"],
        client_name=None,
        metadata={},
        refreshed_at=utcnow(),
    )


async def test_only_old_registrations_never_used_are_purged(engine: AsyncEngine) -> None:
    store = OAuthStore(engine)
    for client_id in ("client_old_unused", "client_old_used", "client_new_unused"):
        await store.save_client(_client(client_id))
    await store.save_client(_client("https://app.example/client.json", kind="metadata_document"))
    code = CodeRecord(
        integration_id="mcpserver_1",
        client_id="client_old_used",
        redirect_uri="http://127.0.0.1/callback",
        code_challenge="c" * 43,
        scope="mcp",
        resource="http://edge/mcp",
        subject="user",
        contact_id="contact_1",
        generation=0,
        family_id="family_1",
        expires_at=utcnow() + timedelta(minutes=1),
        used_at=None,
    )
    await store.save_code("code-hash", code)  # an authorization code marks its client used
    week_ago = utcnow() - timedelta(days=8)
    async with engine.begin() as conn:
        await conn.execute(
            update(oauth_clients)
            .where(oauth_clients.c.client_id != "client_new_unused")
            .values(created_at=week_ago)
        )
    assert await store.forget_unused_clients(utcnow() - timedelta(days=7)) == 1
    async with engine.connect() as conn:
        left = set((await conn.execute(select(oauth_clients.c.client_id))).scalars())
    assert left == {"client_old_used", "client_new_unused", "https://app.example/client.json"}
