"""Static-token use cases with in-memory fakes."""

from __future__ import annotations

import pytest

from skillrelay_auth.presence import EdgePresence
from skillrelay_auth.static_tokens import StaticTokens, StoredToken, TokenExists
from skillrelay_common.ids import hash_secret


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[str, StoredToken] = {}

    async def get(self, integration_id: str) -> StoredToken | None:
        return self.rows.get(integration_id)

    async def insert(self, integration_id: str, token_hash: str) -> StoredToken | None:
        if integration_id in self.rows:
            return None
        self.rows[integration_id] = StoredToken(integration_id, token_hash, 1)
        return self.rows[integration_id]

    async def replace(self, integration_id: str, token_hash: str) -> StoredToken | None:
        row = self.rows.get(integration_id)
        if row is None or row.token_hash is None:
            return None
        self.rows[integration_id] = StoredToken(integration_id, token_hash, row.version + 1)
        return self.rows[integration_id]

    async def revoke(self, integration_id: str) -> StoredToken | None:
        row = self.rows.get(integration_id)
        if row is None:
            return None
        self.rows[integration_id] = StoredToken(integration_id, None, row.version)
        return self.rows[integration_id]


class RecordingInvalidator:
    def __init__(self, store: MemoryStore) -> None:
        self.calls: list[tuple[str, str, StoredToken | None]] = []
        self._store = store

    async def invalidate(self, integration_id: str, reason: str) -> None:
        # Record what the store held at the moment of invalidation: it must already be the new state.
        self.calls.append((integration_id, reason, self._store.rows.get(integration_id)))


class RecordingEvents:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []

    async def rotated(self, integration_id: str, old_version: int) -> None:
        self.events.append(("rotated", integration_id, old_version))

    async def revoked(self, integration_id: str, old_version: int) -> None:
        self.events.append(("revoked", integration_id, old_version))


Parts = tuple[StaticTokens, MemoryStore, RecordingInvalidator, RecordingEvents]


@pytest.fixture
def parts() -> Parts:
    store = MemoryStore()
    invalidator = RecordingInvalidator(store)
    events = RecordingEvents()
    return StaticTokens(store, invalidator, events), store, invalidator, events


async def test_issue_mints_a_prefixed_256_bit_token_and_stores_only_its_hash(parts: Parts) -> None:
    tokens, store, _, _ = parts
    issued = await tokens.issue("mcpserver_a")
    assert issued.token.startswith("sr_mcp_")
    assert len(issued.token) - len("sr_mcp_") >= 43  # 32 bytes, base64url
    assert issued.version == 1
    assert store.rows["mcpserver_a"].token_hash == hash_secret(issued.token)
    assert issued.token not in repr(store.rows)
    with pytest.raises(TokenExists):
        await tokens.issue("mcpserver_a")


async def test_verify_accepts_only_the_live_token(parts: Parts) -> None:
    tokens, _, _, _ = parts
    issued = await tokens.issue("mcpserver_a")
    assert await tokens.verify("mcpserver_a", issued.token) == 1
    assert await tokens.verify("mcpserver_a", issued.token + "x") is None
    assert await tokens.verify("mcpserver_b", issued.token) is None


async def test_rotate_commits_before_invalidating_then_publishes(parts: Parts) -> None:
    tokens, _, invalidator, events = parts
    first = await tokens.issue("mcpserver_a")
    second = await tokens.rotate("mcpserver_a")
    assert second is not None and second.version == 2 and second.token != first.token
    (integration, reason, state_seen) = invalidator.calls[0]
    assert (integration, reason) == ("mcpserver_a", "token.rotated")
    assert state_seen is not None and state_seen.token_hash == hash_secret(second.token)
    assert events.events == [("rotated", "mcpserver_a", 1)]
    assert await tokens.verify("mcpserver_a", first.token) is None
    assert await tokens.verify("mcpserver_a", second.token) == 2
    assert await tokens.rotate("mcpserver_missing") is None


async def test_revoke_ends_the_token_and_is_idempotent(parts: Parts) -> None:
    tokens, _, invalidator, events = parts
    issued = await tokens.issue("mcpserver_a")
    assert await tokens.revoke("mcpserver_a") is True
    assert await tokens.verify("mcpserver_a", issued.token) is None
    assert await tokens.rotate("mcpserver_a") is None
    assert await tokens.revoke("mcpserver_a") is True
    assert await tokens.revoke("mcpserver_missing") is False
    assert [call[1] for call in invalidator.calls] == ["token.revoked", "token.revoked"]
    assert events.events[0] == ("revoked", "mcpserver_a", 1)


def test_presence_forgets_silent_replicas() -> None:
    now = [100.0]
    presence = EdgePresence(window=3.0, clock=lambda: now[0])
    presence.saw("edge-1")
    now[0] += 2.0
    presence.saw("edge-2")
    assert presence.live() == {"edge-1", "edge-2"}
    now[0] += 1.5
    assert presence.live() == {"edge-2"}
    assert presence.warming_up() == 0.0
