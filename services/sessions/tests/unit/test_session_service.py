"""SessionService use cases with an in-memory store and event sink (no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import pytest

from skillrelay_common.schemas.auth import TokenRevoked
from skillrelay_common.schemas.base import Invalid, NotFound, Ok
from skillrelay_common.schemas.registry import IntegrationChanged
from skillrelay_common.schemas.sessions import SessionInfo, SessionPosition, SessionsClosed
from skillrelay_devstack.sessions import ManualClock
from skillrelay_sessions.revocations import revocation_reason
from skillrelay_sessions.service import (
    EVICTED_REASON,
    EventKind,
    SessionPolicy,
    SessionService,
    merge_state,
    new_session_id,
)


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[str, SessionInfo] = {}
        self.touch_calls = 0

    async def insert(self, session: SessionInfo, max_sessions: int | None = None) -> list[SessionInfo]:
        self.rows[session.session_id] = session
        if max_sessions is None:
            return []
        live = sorted(
            (r for r in self.rows.values() if r.integration_id == session.integration_id),
            key=lambda r: (r.last_seen_at, r.created_at, r.session_id),
            reverse=True,
        )
        for row in live[max_sessions:]:
            del self.rows[row.session_id]
        return live[max_sessions:]

    async def get_live(self, session_id: str, now: float) -> SessionInfo | None:
        row = self.rows.get(session_id)
        return row if row is not None and row.expires_at >= now else None

    async def touch(self, session_ids: Sequence[str], seen_at: float, ttl: float, alive_after: float) -> int:
        self.touch_calls += 1
        changed = 0
        for sid in session_ids:
            row = self.rows.get(sid)
            if row is not None and row.expires_at >= alive_after and row.last_seen_at < seen_at:
                self.rows[sid] = msgspec.structs.replace(row, last_seen_at=seen_at, expires_at=seen_at + ttl)
                changed += 1
        return changed

    async def change_state(
        self,
        session_id: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        protocol_version: str | None,
        now: float,
    ) -> SessionInfo | None:
        row = await self.get_live(session_id, now)
        if row is None:
            return None
        changed = msgspec.structs.replace(
            row, state=change(row.state), protocol_version=protocol_version or row.protocol_version
        )
        self.rows[session_id] = changed
        return changed

    async def delete(self, session_id: str, integration_id: str | None) -> SessionInfo | None:
        row = self.rows.get(session_id)
        if row is None or (integration_id is not None and row.integration_id != integration_id):
            return None
        return self.rows.pop(session_id)

    async def delete_for_integration(self, integration_id: str, principal: str | None) -> list[SessionInfo]:
        doomed = [
            row
            for row in self.rows.values()
            if row.integration_id == integration_id and principal in (None, row.principal)
        ]
        for row in doomed:
            del self.rows[row.session_id]
        return doomed

    async def list_live(
        self,
        integration_id: str,
        now: float,
        take: int,
        descending: bool,
        after: SessionPosition | None,
    ) -> list[SessionInfo]:
        live = sorted(
            (r for r in self.rows.values() if r.integration_id == integration_id and r.expires_at >= now),
            key=lambda r: (r.created_at, r.session_id),
            reverse=descending,
        )
        if after is not None:
            mark = (after.created_at, after.session_id)
            live = [
                r
                for r in live
                if (
                    (r.created_at, r.session_id) < mark if descending else (r.created_at, r.session_id) > mark
                )
            ]
        return live[:take]

    async def delete_expired(self, cutoff: float, limit: int) -> list[SessionInfo]:
        doomed = sorted((r for r in self.rows.values() if r.expires_at < cutoff), key=lambda r: r.expires_at)
        for row in doomed[:limit]:
            del self.rows[row.session_id]
        return doomed[:limit]


class RecordedEvents:
    def __init__(self) -> None:
        self.seen: list[tuple[EventKind, str, str]] = []

    async def publish(self, kind: EventKind, session: SessionInfo, reason: str = "") -> None:
        self.seen.append((kind, session.session_id, reason))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def events() -> RecordedEvents:
    return RecordedEvents()


@pytest.fixture
def service(store: MemoryStore, events: RecordedEvents, clock: ManualClock) -> SessionService:
    policy = SessionPolicy(ttl_seconds=100, sweep_grace_seconds=10, sweep_batch=2)
    return SessionService(store, events, policy, clock)


async def test_oauth_subjects_may_be_any_printable_text(service: SessionService) -> None:
    for principal in ("oauth:auth0|5f1c", "oauth:Jöns Jakob", "oauth:248289761001"):
        assert isinstance(await service.create("i", principal, None, {}), SessionInfo), principal


def test_session_ids_are_long_random_visible_ascii() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    for sid in ids:
        assert len(sid) == 32  # 24 random bytes = 192 bits
        assert all(0x21 <= ord(ch) <= 0x7E for ch in sid)


async def test_create_binds_and_announces(
    service: SessionService, events: RecordedEvents, clock: ManualClock
) -> None:
    created = await service.create("mcpserver_a", "static:v7", "2025-11-25", {"k": 1})
    assert isinstance(created, SessionInfo)
    assert (created.integration_id, created.principal) == ("mcpserver_a", "static:v7")
    assert created.expires_at == clock.now + 100
    assert events.seen == [("opened", created.session_id, "")]


@pytest.mark.parametrize(
    ("integration_id", "principal"),
    [
        ("", "static:v1"),
        ("x" * 201, "static:v1"),
        ("i", "static:"),
        ("i", "static:v1x"),
        ("i", "oauth:"),
        ("i", "oauth:a\nb"),
        ("i", "oauth:" + "s" * 600),
        ("i", "user:1"),
    ],
)
async def test_create_rejects_bad_bindings(
    service: SessionService, integration_id: str, principal: str
) -> None:
    assert isinstance(await service.create(integration_id, principal, None, {}), Invalid)


async def test_touch_is_one_store_call_per_batch_and_ignores_junk(
    service: SessionService, store: MemoryStore, clock: ManualClock
) -> None:
    sessions = [await service.create("i", "static:v1", None, {}) for _ in range(5)]
    clock.advance(50)
    ids = [s.session_id for s in sessions if isinstance(s, SessionInfo)]
    assert await service.touch([*ids, *ids, "", "x" * 500], clock.now) == Ok()
    assert store.touch_calls == 1
    assert {row.expires_at for row in store.rows.values()} == {clock.now + 100}
    assert await service.touch([], clock.now) == Ok()
    assert store.touch_calls == 1  # nothing to write, no write


async def test_sweep_respects_grace_and_batches(
    service: SessionService, events: RecordedEvents, clock: ManualClock
) -> None:
    for _ in range(3):
        await service.create("i", "static:v1", None, {})
    clock.advance(105)  # expired, inside the 10 s grace
    assert await service.sweep_expired() == 0
    clock.advance(10)
    assert await service.sweep_expired() == 2  # batch of 2
    assert await service.sweep_expired() == 1
    assert [kind for kind, _, _ in events.seen].count("expired") == 3


async def test_close_and_close_all(service: SessionService, events: RecordedEvents) -> None:
    a = await service.create("i", "static:v1", None, {})
    b = await service.create("i", "oauth:x", None, {})
    assert isinstance(a, SessionInfo) and isinstance(b, SessionInfo)
    assert await service.close(a.session_id, "deleted", integration_id="other") == NotFound(what="session")
    assert await service.close(a.session_id, "deleted") == Ok()
    assert await service.close_all("i", None, "token_rotated") == SessionsClosed(count=1)
    assert await service.close_all("i", None, "token_rotated") == SessionsClosed(count=0)
    assert events.seen[-2:] == [
        ("closed", a.session_id, "deleted"),
        ("closed", b.session_id, "token_rotated"),
    ]


def test_which_events_end_sessions() -> None:
    def encode(message: Any) -> bytes:
        return msgspec.json.encode(message)

    token = encode(TokenRevoked(integration_id="i", version=3))
    assert revocation_reason("events.auth.token.rotated", token) == ("i", "token_rotated")
    assert revocation_reason("events.auth.token.revoked", token) == ("i", "token_revoked")
    deleted = IntegrationChanged(integration_id="i", owner_id="u", change="deleted")
    assert revocation_reason("events.registry.integration.deleted", encode(deleted)) == (
        "i",
        "integration_deleted",
    )
    renamed = IntegrationChanged(integration_id="i", owner_id="u", change="updated", fields=["name"])
    assert revocation_reason("events.registry.integration.updated", encode(renamed)) is None
    oauth = IntegrationChanged(
        integration_id="i", owner_id="u", change="updated", fields=["oAuthConnectionId"]
    )
    assert revocation_reason("events.registry.integration.updated", encode(oauth)) == (
        "i",
        "oauth_connection_changed",
    )
    created = IntegrationChanged(integration_id="i", owner_id="u", change="created")
    assert revocation_reason("events.registry.integration.created", encode(created)) is None


def test_merge_state_replaces_keys_and_edits_lists() -> None:
    current = {"logLevel": "info", "subscriptions": ["a", "b"], "caps": {"x": 1}}
    merged = merge_state(
        current, {"logLevel": "debug"}, {"subscriptions": ["c", "a"]}, {"subscriptions": ["b"]}
    )
    assert merged == {"logLevel": "debug", "subscriptions": ["a", "c"], "caps": {"x": 1}}
    assert merge_state({}, {}, {"subscriptions": ["a"]}, {}) == {"subscriptions": ["a"]}
    assert merge_state({"subscriptions": "junk"}, {}, {}, {"subscriptions": ["a"]}) == {"subscriptions": []}


async def test_update_state_refuses_to_grow_past_the_limit(service: SessionService) -> None:
    session = await service.create("i", "static:v1", None, {"a": "x" * 40_000})
    assert isinstance(session, SessionInfo)
    reply = await service.update_state(session.session_id, {"b": "y" * 40_000}, None)
    assert isinstance(reply, Invalid)
    unchanged = await service.get(session.session_id)
    assert isinstance(unchanged, SessionInfo) and set(unchanged.state) == {"a"}


async def test_at_the_cap_the_least_recently_used_session_ends(
    service: SessionService, store: MemoryStore, events: RecordedEvents, clock: ManualClock
) -> None:
    opened = []
    for _ in range(3):
        created = await service.create("i", "static:v1", None, {}, max_sessions=3)
        assert isinstance(created, SessionInfo)
        opened.append(created.session_id)
        clock.advance(1)
    await service.touch([opened[0]], clock.now)  # the oldest is now the most recently used
    clock.advance(1)
    fourth = await service.create("i", "static:v1", None, {}, max_sessions=3)
    assert isinstance(fourth, SessionInfo)
    assert set(store.rows) == {opened[0], opened[2], fourth.session_id}
    assert events.seen[-1] == ("closed", opened[1], EVICTED_REASON)


async def test_a_cap_out_of_range_is_invalid(service: SessionService) -> None:
    for cap in (0, -1, 10_001):
        assert isinstance(await service.create("i", "static:v1", None, {}, max_sessions=cap), Invalid)


async def test_lists_come_in_pages_without_state(service: SessionService, clock: ManualClock) -> None:
    created = []
    for _ in range(5):
        state = {"capabilities": {"x": 1}, "clientInfo": {"name": "n" * 500, "version": "1", "extra": "e"}}
        session = await service.create("i", "static:v1", None, state)
        assert isinstance(session, SessionInfo)
        created.append(session.session_id)
        clock.advance(1)
    first = await service.list("i", take=2)
    assert [s.session_id for s in first.sessions] == created[:2]
    assert all(s.state == {"clientInfo": {"name": "n" * 128, "version": "1"}} for s in first.sessions)
    assert first.next is not None
    second = await service.list("i", take=2, after=first.next)
    third = await service.list("i", take=2, after=second.next)
    assert [s.session_id for s in second.sessions + third.sessions] == created[2:]
    assert third.next is None
    newest_first = await service.list("i", take=10, descending=True)
    assert [s.session_id for s in newest_first.sessions] == created[::-1]
    assert (await service.list("i", take=10_000)).sessions == (await service.list("i", take=100)).sessions
