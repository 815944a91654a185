"""PostgreSQL store of sessions (schema ``sessions``). Each method is one SQL statement.

``SELECT *`` / ``RETURNING *`` read every column of the table, which is exactly a ``SessionInfo``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncEngine

from skillrelay_common.schemas.sessions import SessionInfo, SessionPosition

_json = msgspec.json.Encoder()

_INSERT = text(
    "INSERT INTO sessions.sessions (id, integration_id, principal, created_at, last_seen_at, expires_at, "
    "protocol_version, state) "
    "VALUES (:id, :integration_id, :principal, :created_at, :last_seen_at, :expires_at, "
    ":protocol_version, CAST(:state AS jsonb))"
)
# Inserts into one capped integration serialise on a transaction-scoped advisory lock, so two replicas
# opening sessions at once never leave more than the cap alive.
_LOCK_INTEGRATION = text("SELECT pg_advisory_xact_lock(hashtextextended(:integration_id, 0))")
# The least recently used live sessions beyond the cap (the one just inserted is the most recent).
_EVICT_BEYOND_CAP = text(
    "DELETE FROM sessions.sessions WHERE id IN ("
    "  SELECT id FROM sessions.sessions WHERE integration_id = :integration_id AND expires_at >= :now "
    "  ORDER BY last_seen_at DESC, created_at DESC, id DESC OFFSET :cap"
    ") RETURNING *"
)
_GET_LIVE = text("SELECT * FROM sessions.sessions WHERE id = :id AND expires_at >= :now")
# The keep-alive path: one statement for a whole batch from one edge replica. Each row keeps its own
# TTL (its integration's idle timeout) as expires_at - last_seen_at; the right-hand sides read the row
# as it was before this update.
_TOUCH = text(
    "UPDATE sessions.sessions "
    "SET last_seen_at = greatest(last_seen_at, :seen_at), "
    "    expires_at = greatest(last_seen_at, :seen_at) + "
    "        CASE WHEN expires_at > last_seen_at THEN expires_at - last_seen_at ELSE :ttl END "
    "WHERE id = ANY(CAST(:ids AS text[])) AND expires_at >= :alive_after AND last_seen_at < :seen_at"
)
_LOCK_LIVE = text("SELECT state FROM sessions.sessions WHERE id = :id AND expires_at >= :now FOR UPDATE")
_SET_STATE = text(
    "UPDATE sessions.sessions "
    "SET state = CAST(:state AS jsonb), protocol_version = coalesce(:protocol_version, protocol_version) "
    "WHERE id = :id RETURNING *"
)
_DELETE = text(
    "DELETE FROM sessions.sessions WHERE id = :id "
    "AND (CAST(:integration_id AS text) IS NULL OR integration_id = :integration_id) "
    "RETURNING *"
)
_DELETE_FOR_INTEGRATION = text(
    "DELETE FROM sessions.sessions WHERE integration_id = :integration_id "
    "AND (CAST(:principal AS text) IS NULL OR principal = :principal) "
    "RETURNING *"
)
# Keyset pages over (created_at, id): a cursor names the last row seen, the next page starts after it.
_LIST_LIVE_ASC = text(
    "SELECT * FROM sessions.sessions "
    "WHERE integration_id = :integration_id AND expires_at >= :now "
    "AND (CAST(:after_id AS text) IS NULL OR (created_at, id) > (:after_created_at, :after_id)) "
    "ORDER BY created_at, id LIMIT :take"
)
_LIST_LIVE_DESC = text(
    "SELECT * FROM sessions.sessions "
    "WHERE integration_id = :integration_id AND expires_at >= :now "
    "AND (CAST(:after_id AS text) IS NULL OR (created_at, id) < (:after_created_at, :after_id)) "
    "ORDER BY created_at DESC, id DESC LIMIT :take"
)
_DELETE_IDLE = text(
    "DELETE FROM sessions.sessions WHERE integration_id = :integration_id AND last_seen_at < :before "
    "RETURNING *"
)
_COUNT_LIVE = text(
    "SELECT integration_id, count(*) FROM sessions.sessions "
    "WHERE integration_id = ANY(CAST(:ids AS text[])) AND expires_at >= :now GROUP BY integration_id"
)
# SKIP LOCKED: concurrent sweepers (several replicas) take disjoint rows; each expiry is announced once.
_DELETE_EXPIRED = text(
    "DELETE FROM sessions.sessions WHERE id IN ("
    "  SELECT id FROM sessions.sessions WHERE expires_at < :cutoff "
    "  ORDER BY expires_at LIMIT :limit FOR UPDATE SKIP LOCKED"
    ") RETURNING *"
)


@dataclass
class WriteCounters:
    """Write statements issued and rows they changed, by kind (read by tests and the benchmark)."""

    touch_statements: int = 0
    touched_rows: int = 0
    other_writes: int = 0


class PostgresSessionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.counters = WriteCounters()

    async def insert(self, session: SessionInfo, max_sessions: int | None = None) -> list[SessionInfo]:
        evicted: list[SessionInfo] = []
        async with self._engine.begin() as conn:
            if max_sessions is not None:
                await conn.execute(_LOCK_INTEGRATION, {"integration_id": session.integration_id})
            await conn.execute(
                _INSERT,
                {
                    "id": session.session_id,
                    "integration_id": session.integration_id,
                    "principal": session.principal,
                    "created_at": session.created_at,
                    "last_seen_at": session.last_seen_at,
                    "expires_at": session.expires_at,
                    "protocol_version": session.protocol_version,
                    "state": _json.encode(session.state).decode(),
                },
            )
            if max_sessions is not None:
                parameters = {
                    "integration_id": session.integration_id,
                    "now": session.created_at,
                    "cap": max_sessions,
                }
                evicted = [_to_info(row) for row in (await conn.execute(_EVICT_BEYOND_CAP, parameters)).all()]
        self.counters.other_writes += 1
        return evicted

    async def get_live(self, session_id: str, now: float) -> SessionInfo | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_GET_LIVE, {"id": session_id, "now": now})).first()
        return _to_info(row) if row is not None else None

    async def touch(self, session_ids: Sequence[str], seen_at: float, ttl: float, alive_after: float) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                _TOUCH, {"ids": list(session_ids), "seen_at": seen_at, "ttl": ttl, "alive_after": alive_after}
            )
        changed = int(result.rowcount)
        self.counters.touch_statements += 1
        self.counters.touched_rows += changed
        return changed

    async def change_state(
        self,
        session_id: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        protocol_version: str | None,
        now: float,
    ) -> SessionInfo | None:
        # Read under a row lock, then write: concurrent changes from several replicas serialise.
        async with self._engine.begin() as conn:
            current = (await conn.execute(_LOCK_LIVE, {"id": session_id, "now": now})).first()
            if current is None:
                return None
            state = change(_decode_state(current.state))
            parameters = {
                "id": session_id,
                "state": _json.encode(state).decode(),
                "protocol_version": protocol_version,
            }
            row = (await conn.execute(_SET_STATE, parameters)).one()
        self.counters.other_writes += 1
        return _to_info(row)

    async def delete(self, session_id: str, integration_id: str | None) -> SessionInfo | None:
        async with self._engine.begin() as conn:
            row = (await conn.execute(_DELETE, {"id": session_id, "integration_id": integration_id})).first()
        self.counters.other_writes += 1
        return _to_info(row) if row is not None else None

    async def delete_for_integration(self, integration_id: str, principal: str | None) -> list[SessionInfo]:
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    _DELETE_FOR_INTEGRATION, {"integration_id": integration_id, "principal": principal}
                )
            ).all()
        self.counters.other_writes += 1
        return [_to_info(row) for row in rows]

    async def list_live(
        self,
        integration_id: str,
        now: float,
        take: int,
        descending: bool,
        after: SessionPosition | None,
    ) -> list[SessionInfo]:
        parameters = {
            "integration_id": integration_id,
            "now": now,
            "take": take,
            "after_created_at": after.created_at if after else None,
            "after_id": after.session_id if after else None,
        }
        statement = _LIST_LIVE_DESC if descending else _LIST_LIVE_ASC
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement, parameters)).all()
        return [_to_info(row) for row in rows]

    async def delete_expired(self, cutoff: float, limit: int) -> list[SessionInfo]:
        async with self._engine.begin() as conn:
            rows = (await conn.execute(_DELETE_EXPIRED, {"cutoff": cutoff, "limit": limit})).all()
        self.counters.other_writes += 1
        return [_to_info(row) for row in rows]

    async def delete_idle(self, integration_id: str, last_seen_before: float) -> list[SessionInfo]:
        async with self._engine.begin() as conn:
            parameters = {"integration_id": integration_id, "before": last_seen_before}
            rows = (await conn.execute(_DELETE_IDLE, parameters)).all()
        self.counters.other_writes += 1
        return [_to_info(row) for row in rows]

    async def count_live(self, integration_ids: Sequence[str], now: float) -> dict[str, int]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_COUNT_LIVE, {"ids": list(integration_ids), "now": now})).all()
        return {str(row[0]): int(row[1]) for row in rows}


def _decode_state(state: Any) -> dict[str, Any]:
    if isinstance(state, str | bytes):
        state = msgspec.json.decode(state)
    return state if isinstance(state, dict) else {}


def _to_info(row: Row[Any]) -> SessionInfo:
    return SessionInfo(
        session_id=row.id,
        integration_id=row.integration_id,
        principal=row.principal,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        protocol_version=row.protocol_version,
        state=_decode_state(row.state),
    )
