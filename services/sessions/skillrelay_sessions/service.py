"""Use cases of the sessions service. No framework imports: the store and the event sink are ports.

A session is bound to one integration and one principal (``static:v<version>`` or ``oauth:<subject>``).
Expiry slides: ``expires_at = last_seen_at + ttl``. Closing deletes the row; the sweeper deletes rows
that expired more than ``sweep_grace_seconds`` ago, so a keep-alive batch still in flight from an
edge replica (flushed every few seconds) can never lose a session that was used within its TTL.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import msgspec

from skillrelay_common.schemas.base import Invalid, NotFound, Ok
from skillrelay_common.schemas.sessions import (
    SessionCounts,
    SessionInfo,
    SessionList,
    SessionPosition,
    SessionsClosed,
)

EventKind = Literal["opened", "closed", "expired", "updated"]

STATIC_PRINCIPAL = re.compile(r"^static:v\d{1,18}$")
MAX_PRINCIPAL_LENGTH = 512
MAX_ID_LENGTH = 200
MAX_STATE_BYTES = 64 * 1024
MAX_TOUCH_BATCH = 10_000
# The most sessions one list page holds (without state, a page stays far below NATS's 1 MB).
MAX_LIST_TAKE = 100
# The widest per-integration cap on live sessions an integration may set (registry ``maxSessions``).
MAX_SESSIONS_CAP = 10_000
EVICTED_REASON = "evicted: the integration's session limit was reached"
# An integration's idle timeout, and the "idle for" of a clean-up: a minute to thirty days.
MIN_IDLE_SECONDS = 60
MAX_TTL_SECONDS = 30 * 24 * 3600.0
MAX_COUNT_IDS = 1000
_state_encoder = msgspec.json.Encoder()


def new_session_id() -> str:
    """192 bits from the OS's secure random source, URL-safe base64: visible ASCII, no padding."""
    return secrets.token_urlsafe(24)


class SessionStore(Protocol):
    """Persistence of sessions (PostgreSQL in production, a dict in unit tests)."""

    async def insert(self, session: SessionInfo, max_sessions: int | None = None) -> list[SessionInfo]:
        """Insert ``session``; with ``max_sessions``, then delete (and return) the integration's least
        recently used live sessions beyond that many, atomically with respect to other inserts."""
        ...

    async def get_live(self, session_id: str, now: float) -> SessionInfo | None: ...

    async def touch(self, session_ids: Sequence[str], seen_at: float, ttl: float, alive_after: float) -> int:
        """One statement: ``last_seen_at = greatest(last_seen_at, seen_at)`` for rows that were alive
        at ``alive_after``, each row's expiry pushed by its own TTL (``expires_at - last_seen_at``; ``ttl``
        for rows without one). Returns the number of rows changed."""
        ...

    async def change_state(
        self,
        session_id: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        protocol_version: str | None,
        now: float,
    ) -> SessionInfo | None:
        """Replace a live session's state by ``change(current state)``, atomically (row lock)."""
        ...

    async def delete(self, session_id: str, integration_id: str | None) -> SessionInfo | None: ...

    async def delete_for_integration(
        self, integration_id: str, principal: str | None
    ) -> list[SessionInfo]: ...

    async def list_live(
        self,
        integration_id: str,
        now: float,
        take: int,
        descending: bool,
        after: SessionPosition | None,
    ) -> list[SessionInfo]:
        """Up to ``take`` live sessions strictly after ``after`` in ``(created_at, id)`` order."""
        ...

    async def delete_expired(self, cutoff: float, limit: int) -> list[SessionInfo]: ...

    async def delete_idle(self, integration_id: str, last_seen_before: float) -> list[SessionInfo]: ...

    async def count_live(self, integration_ids: Sequence[str], now: float) -> dict[str, int]: ...


class SessionEventSink(Protocol):
    """Where session changes are announced (JetStream events + audit in production)."""

    async def publish(self, kind: EventKind, session: SessionInfo, reason: str = "") -> None: ...


@dataclass(frozen=True)
class SessionPolicy:
    ttl_seconds: float = 24 * 60 * 60
    # Rows are deleted only this long after they expired: covers edge keep-alive batches in flight
    # (flush interval + request timeout, a few seconds) with a wide margin.
    sweep_grace_seconds: float = 60.0
    sweep_batch: int = 500


class SessionService:
    def __init__(
        self,
        store: SessionStore,
        events: SessionEventSink,
        policy: SessionPolicy,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._events = events
        self._policy = policy
        self._clock = clock

    async def create(
        self,
        integration_id: str,
        principal: str,
        protocol_version: str | None,
        state: dict[str, Any],
        max_sessions: int | None = None,
        ttl_seconds: float | None = None,
    ) -> SessionInfo | Invalid:
        """Open a session. At the integration's cap the least recently used sessions end (announced as
        closed, reason ``EVICTED_REASON``): their clients get 404 and initialize again, as MCP says.
        ``ttl_seconds`` (the integration's idle timeout, else the policy's) is how far each use pushes
        the expiry: the row keeps it as ``expires_at - last_seen_at``."""
        problem = _check_binding(integration_id, principal) or _check_state(state) or _check_ttl(ttl_seconds)
        if problem:
            return Invalid(message=problem)
        if max_sessions is not None and not 1 <= max_sessions <= MAX_SESSIONS_CAP:
            return Invalid(message=f"max_sessions must be from 1 to {MAX_SESSIONS_CAP}")
        now = self._clock()
        session = SessionInfo(
            session_id=new_session_id(),
            integration_id=integration_id,
            principal=principal,
            created_at=now,
            last_seen_at=now,
            expires_at=now + (ttl_seconds or self._policy.ttl_seconds),
            protocol_version=protocol_version,
            state=state,
        )
        evicted = await self._store.insert(session, max_sessions)
        await self._events.publish("opened", session)
        for old in evicted:
            await self._events.publish("closed", old, EVICTED_REASON)
        return session

    async def get(self, session_id: str) -> SessionInfo | NotFound:
        if not _plausible_id(session_id):
            return NotFound(what="session")
        session = await self._store.get_live(session_id, self._clock())
        return session if session is not None else NotFound(what="session")

    async def touch(self, session_ids: Sequence[str], seen_at: float) -> Ok:
        """Apply one keep-alive batch with a single write. A ``seen_at`` from the future (clock skew)
        is clamped to now; sessions closed or swept meanwhile are not brought back."""
        ids = sorted({sid for sid in session_ids[:MAX_TOUCH_BATCH] if _plausible_id(sid)})
        if ids:
            seen = min(seen_at, self._clock())
            await self._store.touch(
                ids, seen, self._policy.ttl_seconds, alive_after=seen - self._policy.sweep_grace_seconds
            )
        return Ok()

    async def update_state(
        self,
        session_id: str,
        state: dict[str, Any],
        protocol_version: str | None,
        add_items: dict[str, list[str]] | None = None,
        remove_items: dict[str, list[str]] | None = None,
    ) -> SessionInfo | NotFound | Invalid:
        problem = _check_state(state)
        if problem:
            return Invalid(message=problem)
        if not _plausible_id(session_id):
            return NotFound(what="session")
        too_large = False

        def change(current: dict[str, Any]) -> dict[str, Any]:
            nonlocal too_large
            merged = merge_state(current, state, add_items or {}, remove_items or {})
            too_large = _check_state(merged) is not None
            return current if too_large else merged

        session = await self._store.change_state(session_id, change, protocol_version, self._clock())
        if too_large:
            return Invalid(message=f"session state would be larger than {MAX_STATE_BYTES} bytes")
        if session is None:
            return NotFound(what="session")
        await self._events.publish("updated", session)
        return session

    async def close(self, session_id: str, reason: str, integration_id: str | None = None) -> Ok | NotFound:
        if not _plausible_id(session_id):
            return NotFound(what="session")
        session = await self._store.delete(session_id, integration_id)
        if session is None:
            return NotFound(what="session")
        await self._events.publish("closed", session, reason)
        return Ok()

    async def close_all(self, integration_id: str, principal: str | None, reason: str) -> SessionsClosed:
        """End every session of an integration (or of one principal in it). Idempotent."""
        closed = await self._store.delete_for_integration(integration_id, principal)
        for session in closed:
            await self._events.publish("closed", session, reason)
        return SessionsClosed(count=len(closed))

    async def close_idle(
        self, integration_id: str, idle_seconds: float, reason: str
    ) -> SessionsClosed | Invalid:
        """End every session of the integration unused for ``idle_seconds`` or more (the owner's
        clean-up: most clients never send DELETE). Their clients get 404 and initialize again."""
        if not integration_id or len(integration_id) > MAX_ID_LENGTH:
            return Invalid(message="integration_id is required (at most 200 characters)")
        if not MIN_IDLE_SECONDS <= idle_seconds <= MAX_TTL_SECONDS:
            return Invalid(message=f"idle_seconds must be from {MIN_IDLE_SECONDS} to {MAX_TTL_SECONDS:.0f}")
        closed = await self._store.delete_idle(integration_id, self._clock() - idle_seconds)
        for session in closed:
            await self._events.publish("closed", session, reason)
        return SessionsClosed(count=len(closed))

    async def count(self, integration_ids: Sequence[str]) -> SessionCounts | Invalid:
        if len(integration_ids) > MAX_COUNT_IDS:
            return Invalid(message=f"at most {MAX_COUNT_IDS} integrations at once")
        ids = sorted({i for i in integration_ids if 0 < len(i) <= MAX_ID_LENGTH})
        counts = await self._store.count_live(ids, self._clock()) if ids else {}
        return SessionCounts(counts={i: counts.get(i, 0) for i in ids})

    async def list(
        self,
        integration_id: str,
        take: int = MAX_LIST_TAKE,
        descending: bool = False,
        after: SessionPosition | None = None,
    ) -> SessionList:
        """One page of live sessions, without their state; ``next`` is set when more follow."""
        take = min(max(take, 1), MAX_LIST_TAKE)
        rows = await self._store.list_live(integration_id, self._clock(), take + 1, descending, after)
        page = [msgspec.structs.replace(row, state=_listed_state(row.state)) for row in rows[:take]]
        more = len(rows) > take
        last = page[-1] if page else None
        position = SessionPosition(created_at=last.created_at, session_id=last.session_id) if last else None
        return SessionList(sessions=page, next=position if more else None)

    async def sweep_expired(self) -> int:
        """Delete one batch of sessions expired longer than the grace ago and announce each.
        Safe with several replicas: each row is deleted (and announced) by exactly one of them."""
        cutoff = self._clock() - self._policy.sweep_grace_seconds
        expired = await self._store.delete_expired(cutoff, self._policy.sweep_batch)
        for session in expired:
            await self._events.publish("expired", session, "expired")
        return len(expired)

    @property
    def sweep_batch(self) -> int:
        return self._policy.sweep_batch


def merge_state(
    current: dict[str, Any],
    patch: dict[str, Any],
    add_items: dict[str, list[str]],
    remove_items: dict[str, list[str]],
) -> dict[str, Any]:
    """Top-level keys of ``patch`` replace; then items are added to / removed from list-valued keys
    (order kept, no duplicates)."""
    merged = {**current, **patch}
    for key in add_items.keys() | remove_items.keys():
        existing = merged.get(key)
        items = [item for item in existing if isinstance(item, str)] if isinstance(existing, list) else []
        for item in add_items.get(key, []):
            if item not in items:
                items.append(item)
        removed = set(remove_items.get(key, []))
        merged[key] = [item for item in items if item not in removed]
    return merged


# What a listed session shows of its state: who the client says it is, a few short strings.
_LISTED_CLIENT_KEYS = ("name", "title", "version")
_LISTED_TEXT = 128


def _listed_state(state: dict[str, Any]) -> dict[str, Any]:
    """Only a bounded ``clientInfo``: a page of 100 sessions stays a few tens of KB whatever the
    clients sent (the rest of a state can be 64 KB per session)."""
    client = state.get("clientInfo")
    if not isinstance(client, dict):
        return {}
    kept = {
        key: value[:_LISTED_TEXT]
        for key in _LISTED_CLIENT_KEYS
        if isinstance(value := client.get(key), str) and value
    }
    return {"clientInfo": kept} if kept else {}


def _plausible_id(session_id: str) -> bool:
    return 0 < len(session_id) <= MAX_ID_LENGTH and session_id.isascii() and session_id.isprintable()


def _check_binding(integration_id: str, principal: str) -> str | None:
    if not integration_id or len(integration_id) > MAX_ID_LENGTH:
        return "integration_id is required (at most 200 characters)"
    # An OAuth subject is whatever the IdP says (any printable text); a static one is a version.
    is_oauth = principal.startswith("oauth:") and len(principal) > len("oauth:") and principal.isprintable()
    if len(principal) > MAX_PRINCIPAL_LENGTH or not (is_oauth or STATIC_PRINCIPAL.match(principal)):
        return "principal must be 'static:v<version>' or 'oauth:<subject>'"
    return None


def _check_ttl(ttl_seconds: float | None) -> str | None:
    if ttl_seconds is not None and not MIN_IDLE_SECONDS <= ttl_seconds <= MAX_TTL_SECONDS:
        return f"ttl_seconds must be from {MIN_IDLE_SECONDS} to {MAX_TTL_SECONDS:.0f}"
    return None


def _check_state(state: dict[str, Any]) -> str | None:
    if len(_state_encoder.encode(state)) > MAX_STATE_BYTES:
        return f"session state is larger than {MAX_STATE_BYTES} bytes"
    return None
