"""The edge's view of MCP sessions, which live in the sessions service (shared by every replica).

- ``resolve`` answers from a short positive cache when it can; the cache is dropped per session on
  ``events.sessions.session.{closed,expired,updated}`` and entirely when the NATS connection was
  lost (events may have been missed), so a session ended anywhere answers 404 on every replica.
- ``touch`` costs no I/O: used session ids are coalesced in memory and written as one
  ``SESSIONS_TOUCH`` batch per flush interval (one UPDATE in the sessions service), on stop, when
  the batch grows large, and at once for a session close to its expiry. The sessions service sweeps
  a session only a grace period (≥ the flush interval) after it expired, so a batch in flight never
  loses a session that was used within its TTL.
- The sessions service being unreachable raises ``SessionsUnavailable`` (answer 503), never a 404:
  a client must not lose its session because of an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from nats.aio.msg import Msg

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.base import Invalid, NotFound, Ok, Unavailable
from skillrelay_common.schemas.sessions import (
    CloseSession,
    CreateSession,
    GetSession,
    SessionEvent,
    SessionInfo,
    TouchSessions,
    UpdateSessionState,
)
from skillrelay_common.subjects import (
    SESSION_CLOSED,
    SESSION_EXPIRED,
    SESSION_UPDATED,
    SESSIONS_CLOSE,
    SESSIONS_CREATE,
    SESSIONS_GET,
    SESSIONS_TOUCH,
    SESSIONS_UPDATE_STATE,
)

_log = structlog.get_logger("skillrelay.edge.sessions")
_event_decoder = msgspec.json.Decoder(SessionEvent)
_INVALIDATING = {SESSION_CLOSED.subject, SESSION_EXPIRED.subject, SESSION_UPDATED.subject}
SESSION_EVENTS_SUBJECT = "events.sessions.session.*"
# Ids per SESSIONS_TOUCH message: ~40 bytes each keeps a batch far below NATS's 1 MB payload limit.
TOUCH_CHUNK = 5_000


class SessionsUnavailable(Exception):
    """The sessions service could not be reached; the edge answers 503, not 404."""


@dataclass
class _Cached:
    info: SessionInfo
    fetched_at: float


class SessionManager:
    def __init__(
        self,
        bus: Bus,
        *,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        flush_interval: float = 2.0,
        cache_seconds: float = 10.0,
        max_cached: int = 10_000,
        max_pending: int = 10_000,
    ) -> None:
        self._bus = bus
        self._ttl = float(ttl_seconds)
        self._clock = clock
        self._flush_interval = flush_interval
        self._cache_seconds = cache_seconds
        self._max_cached = max_cached
        self._max_pending = max_pending
        # A use this close to expiry is written at once, so other replicas see it in time.
        self._urgent_window = min(60.0, self._ttl / 10)
        self._cache: dict[str, _Cached] = {}
        self._pending: dict[str, float] = {}  # session id -> last use not yet written
        self._inflight: dict[str, float] = {}  # the batch being written right now
        self._flush_lock = asyncio.Lock()
        self._invalidations = 0
        self._reconnects_seen = 0
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._subscription: Any = None
        self.touch_batches_sent = 0  # observability for tests and the benchmark

    def register(self, bus: Bus) -> None:
        """Nothing to serve: the event subscription is made in ``start`` (it needs the running loop)."""
        self._bus = bus

    async def start(self) -> None:
        self._reconnects_seen = self._reconnects()
        self._subscription = await self._bus.nc.subscribe(SESSION_EVENTS_SUBJECT, cb=self._on_event)
        await self._bus.nc.flush()
        self._flusher = asyncio.create_task(self._flush_periodically(), name="edge-session-touch-flusher")

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush()
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None
        self._cache.clear()

    # -- the use cases the edge calls ------------------------------------------------------------

    async def open(
        self,
        integration_id: str,
        principal: str,
        *,
        protocol_version: str | None,
        state: dict[str, Any],
        max_sessions: int | None = None,
        ttl_seconds: float | None = None,
    ) -> SessionInfo:
        """Open a session; with ``max_sessions`` (the integration's cap) the sessions service ends the
        integration's least recently used sessions beyond it."""
        reply = await self._bus.request(
            SESSIONS_CREATE,
            CreateSession(
                integration_id=integration_id,
                principal=principal,
                protocol_version=protocol_version,
                state=state,
                max_sessions=max_sessions,
                ttl_seconds=ttl_seconds,
            ),
        )
        match reply:
            case SessionInfo():
                self._remember(reply)
                return reply
            case Invalid():
                raise ValueError(reply.message)
            case _:
                raise SessionsUnavailable(_unavailable_message(reply))

    async def resolve(self, session_id: str, integration_id: str, principal: str) -> SessionInfo | None:
        """None when unknown, expired, closed, or bound to another integration/principal (→ 404 / renew)."""
        info = self._cached(session_id)
        if info is None:
            if session_id in self._pending or session_id in self._inflight:
                await self.flush()  # our own unwritten use counts before we ask
            generation = self._invalidations
            reply = await self._bus.request(SESSIONS_GET, GetSession(session_id=session_id))
            match reply:
                case SessionInfo():
                    info = reply
                    if generation == self._invalidations:  # no close/expiry raced the answer
                        self._remember(info)
                case NotFound():
                    return None
                case _:
                    raise SessionsUnavailable(_unavailable_message(reply))
        if info.integration_id != integration_id or info.principal != principal:
            return None
        return info

    def touch(self, session_id: str) -> None:
        """Record a use; written later in a batch. Never blocks, never does I/O."""
        now = self._clock()
        self._pending[session_id] = now
        entry = self._cache.get(session_id)
        near_expiry = entry is not None and entry.info.expires_at - now < self._urgent_window
        if near_expiry or len(self._pending) >= self._max_pending:
            self._wake.set()

    async def update_state(
        self,
        session_id: str,
        state: dict[str, Any],
        protocol_version: str | None = None,
        *,
        add_items: dict[str, list[str]] | None = None,
        remove_items: dict[str, list[str]] | None = None,
    ) -> SessionInfo | None:
        """Merge ``state`` (top-level keys replace). ``add_items`` / ``remove_items`` edit list-valued
        keys (e.g. resource subscriptions) atomically in the sessions service: use them rather than
        read-modify-write, which loses a change when two replicas update the same session at once."""
        reply = await self._bus.request(
            SESSIONS_UPDATE_STATE,
            UpdateSessionState(
                session_id=session_id,
                state=state,
                protocol_version=protocol_version,
                add_items=add_items or {},
                remove_items=remove_items or {},
            ),
        )
        match reply:
            case SessionInfo():
                self._invalidate(session_id)
                self._remember(reply)
                return reply
            case NotFound():
                self._invalidate(session_id)
                return None
            case Invalid():
                raise ValueError(reply.message)
            case _:
                raise SessionsUnavailable(_unavailable_message(reply))

    async def close(self, session_id: str) -> bool:
        self._invalidate(session_id)
        self._pending.pop(session_id, None)
        reply = await self._bus.request(SESSIONS_CLOSE, CloseSession(session_id=session_id, reason="deleted"))
        match reply:
            case Ok():
                return True
            case NotFound():
                return False
            case _:
                raise SessionsUnavailable(_unavailable_message(reply))

    # -- keep-alive batching ---------------------------------------------------------------------

    async def flush(self) -> None:
        """Write every pending use now, as one batch (chunked when very large). Returns after any
        batch already in flight has been written too."""
        async with self._flush_lock:
            if not self._pending:
                return
            pending, self._pending = self._pending, {}
            self._inflight = pending
            try:
                failed = await self._send(pending)
            except BaseException:  # cancelled (stop) mid-write: keep the uses for the final flush
                self._requeue(list(pending), pending)
                raise
            finally:
                self._inflight = {}
        if failed:
            _log.warning("sessions.touch.deferred", count=len(failed))
            self._requeue(failed, pending)

    def _requeue(self, session_ids: list[str], seen: dict[str, float]) -> None:
        """Put unwritten uses back (bounded); writing one twice is harmless (``greatest``)."""
        for sid in session_ids[-self._max_pending :]:
            self._pending[sid] = max(seen[sid], self._pending.get(sid, 0.0))

    async def _send(self, pending: dict[str, float]) -> list[str]:
        ids = list(pending)
        failed: list[str] = []
        for start in range(0, len(ids), TOUCH_CHUNK):
            chunk = ids[start : start + TOUCH_CHUNK]
            seen_at = max(pending[sid] for sid in chunk)
            reply = await self._bus.request(SESSIONS_TOUCH, TouchSessions(session_ids=chunk, seen_at=seen_at))
            self.touch_batches_sent += 1
            if isinstance(reply, Unavailable):
                failed.extend(chunk)
            else:
                self._note_written(chunk, pending)
        return failed

    def _note_written(self, session_ids: list[str], seen: dict[str, float]) -> None:
        """Cached entries learn their new expiry, so a session near expiry is not flushed again."""
        for sid in session_ids:
            entry = self._cache.get(sid)
            if entry is not None and seen[sid] > entry.info.last_seen_at:
                entry.info = msgspec.structs.replace(
                    entry.info, last_seen_at=seen[sid], expires_at=seen[sid] + self._ttl
                )

    async def _flush_periodically(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                _log.exception("sessions.touch.flush_failed")

    # -- the positive cache ----------------------------------------------------------------------

    def _cached(self, session_id: str) -> SessionInfo | None:
        reconnects = self._reconnects()
        if reconnects != self._reconnects_seen or not self._bus.nc.is_connected:
            # Events may have been missed while disconnected: nothing cached can be trusted.
            self._reconnects_seen = reconnects
            self._drop_cache()
            return None
        entry = self._cache.get(session_id)
        if entry is None:
            return None
        now = self._clock()
        last_seen = max(
            entry.info.last_seen_at, self._pending.get(session_id, 0.0), self._inflight.get(session_id, 0.0)
        )
        if now - entry.fetched_at > self._cache_seconds or now > last_seen + self._ttl:
            # Stale, or expired as far as this replica knows (another replica may have extended
            # it): ask the sessions service.
            del self._cache[session_id]
            return None
        if last_seen == entry.info.last_seen_at:
            return entry.info
        return msgspec.structs.replace(entry.info, last_seen_at=last_seen, expires_at=last_seen + self._ttl)

    def _remember(self, info: SessionInfo) -> None:
        if len(self._cache) >= self._max_cached:
            self._cache.pop(next(iter(self._cache)))  # oldest first
        self._cache[info.session_id] = _Cached(info, self._clock())

    def _invalidate(self, session_id: str) -> None:
        self._invalidations += 1
        self._cache.pop(session_id, None)

    def _drop_cache(self) -> None:
        self._invalidations += 1
        self._cache.clear()

    async def _on_event(self, msg: Msg) -> None:
        if msg.subject not in _INVALIDATING:
            return
        try:
            event = _event_decoder.decode(msg.data)
        except msgspec.DecodeError:
            self._drop_cache()
            return
        self._invalidate(event.session_id)
        if msg.subject != SESSION_UPDATED.subject:
            self._pending.pop(event.session_id, None)

    def _reconnects(self) -> int:
        return int(self._bus.nc.stats.get("reconnects", 0))

    @property
    def cached_sessions(self) -> int:
        return len(self._cache)

    @property
    def pending_touches(self) -> int:
        return len(self._pending)


def _unavailable_message(reply: object) -> str:
    return reply.message if isinstance(reply, Unavailable) else f"unexpected reply {type(reply).__name__}"
