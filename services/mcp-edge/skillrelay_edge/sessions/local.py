"""An in-memory ``SessionManager`` with the same interface as ``manager.SessionManager``, for tests that
run one edge without a sessions service (``create_asgi(..., local_sessions=True)``). Not for production:
its sessions live in one process only."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.sessions import SessionInfo


class LocalSessionManager:
    def __init__(self, bus: Bus | None, *, ttl_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._sessions: dict[str, SessionInfo] = {}

    def register(self, bus: Bus) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

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
        now = self._clock()
        info = SessionInfo(
            session_id=secrets.token_urlsafe(24),
            integration_id=integration_id,
            principal=principal,
            created_at=now,
            last_seen_at=now,
            expires_at=now + (ttl_seconds or self._ttl),
            protocol_version=protocol_version,
            state=dict(state),
        )
        self._sessions[info.session_id] = info
        if max_sessions is not None:
            # As the sessions service does: the least recently used beyond the cap end.
            mine = sorted(
                (s for s in self._sessions.values() if s.integration_id == integration_id),
                key=lambda s: (s.last_seen_at, s.created_at),
                reverse=True,
            )
            for old in mine[max_sessions:]:
                self._sessions.pop(old.session_id, None)
        return info

    async def resolve(self, session_id: str, integration_id: str, principal: str) -> SessionInfo | None:
        info = self._sessions.get(session_id)
        if info is None or info.expires_at <= self._clock():
            return None
        if info.integration_id != integration_id or info.principal != principal:
            return None
        return info

    def touch(self, session_id: str) -> None:
        info = self._sessions.get(session_id)
        if info is not None:
            now = self._clock()
            info.last_seen_at = now
            info.expires_at = now + self._ttl

    async def update_state(
        self,
        session_id: str,
        state: dict[str, Any],
        protocol_version: str | None = None,
        *,
        add_items: dict[str, list[str]] | None = None,
        remove_items: dict[str, list[str]] | None = None,
    ) -> SessionInfo | None:
        info = self._sessions.get(session_id)
        if info is None:
            return None
        merged = {**info.state, **state}
        for key, items in (add_items or {}).items():
            current = merged.get(key)
            listed = [item for item in current if isinstance(item, str)] if isinstance(current, list) else []
            merged[key] = listed + [item for item in items if item not in listed]
        for key, items in (remove_items or {}).items():
            current = merged.get(key)
            if isinstance(current, list):
                merged[key] = [item for item in current if item not in items]
        info.state = merged
        if protocol_version is not None:
            info.protocol_version = protocol_version
        return info

    async def close(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None
