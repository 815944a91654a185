"""Use cases for static access tokens: issue, verify, rotate, revoke. No framework imports.

Only the SHA-256 of a token is stored. Rotation and revocation answer only after every live edge replica
acknowledged dropping its cached credentials of the integration (see ``EdgeInvalidator``), so once the
caller has the answer, no replica accepts the old token.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from skillrelay_common.ids import hash_secret, new_secret

TOKEN_PREFIX = "sr_mcp"
TOKEN_BYTES = 32  # 256 bits
# Compared against when an integration has no token, so a miss costs the same as a mismatch.
_ABSENT_HASH = "0" * 64


@dataclass(frozen=True)
class StoredToken:
    integration_id: str
    token_hash: str | None  # None once revoked
    version: int


class StaticTokenStore(Protocol):
    async def get(self, integration_id: str) -> StoredToken | None: ...

    async def insert(self, integration_id: str, token_hash: str) -> StoredToken | None:
        """None when the integration already has a token row."""

    async def replace(self, integration_id: str, token_hash: str) -> StoredToken | None:
        """Store a new hash with version + 1; None when there is no live token."""

    async def revoke(self, integration_id: str) -> StoredToken | None:
        """Drop the hash (keep the version); the row (revoked now or before), None when there is none."""


class EdgeInvalidator(Protocol):
    async def invalidate(self, integration_id: str, reason: str) -> None:
        """Return once every live edge replica dropped cached credentials of the integration (bounded)."""


class AuditSink(Protocol):
    """``skillrelay_common.audit.AuditRecorder`` satisfies this; never blocks, never raises."""

    def record(
        self,
        kind: str,
        integration_id: str,
        *,
        outcome: str,
        principal: str | None = None,
        latency_ms: float | None = None,
        data: dict[str, Any] | None = None,
    ) -> None: ...


class TokenEvents(Protocol):
    async def rotated(self, integration_id: str, old_version: int) -> None: ...

    async def revoked(self, integration_id: str, old_version: int) -> None: ...


@dataclass(frozen=True)
class IssuedToken:
    integration_id: str
    token: str
    version: int


class TokenExists(Exception):
    pass


class StaticTokens:
    def __init__(
        self,
        store: StaticTokenStore,
        invalidator: EdgeInvalidator,
        events: TokenEvents,
        *,
        on_revoked: Callable[[str], Awaitable[None]] | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self._audit = audit
        self._store = store
        self._invalidator = invalidator
        self._events = events
        # The integration is gone: whatever else was issued for it (OAuth grants) ends too.
        self._on_revoked = on_revoked

    async def issue(self, integration_id: str) -> IssuedToken:
        token = new_secret(TOKEN_PREFIX, TOKEN_BYTES)
        stored = await self._store.insert(integration_id, hash_secret(token))
        if stored is None:
            raise TokenExists(integration_id)
        return IssuedToken(integration_id, token, stored.version)

    async def verify(self, integration_id: str, token: str) -> int | None:
        """The token's version when ``token`` is the integration's live token, else None."""
        stored = await self._store.get(integration_id)
        expected = stored.token_hash if stored is not None and stored.token_hash else _ABSENT_HASH
        matches = hmac.compare_digest(hash_secret(token), expected)
        if stored is None or stored.token_hash is None or not matches:
            return None
        return stored.version

    async def rotate(self, integration_id: str) -> IssuedToken | None:
        token = new_secret(TOKEN_PREFIX, TOKEN_BYTES)
        stored = await self._store.replace(integration_id, hash_secret(token))
        if stored is None:
            return None
        # The new hash is committed before the edges drop their caches, so a replica that asks
        # again after acknowledging can only learn the new token.
        started = time.perf_counter()
        await self._invalidator.invalidate(integration_id, "token.rotated")
        await self._events.rotated(integration_id, stored.version - 1)
        self._record(integration_id, "rotated", stored.version, started)
        return IssuedToken(integration_id, token, stored.version)

    async def revoke(self, integration_id: str) -> bool:
        stored = await self._store.revoke(integration_id)
        if stored is None:
            return False
        if self._on_revoked is not None:
            await self._on_revoked(integration_id)
        started = time.perf_counter()
        await self._invalidator.invalidate(integration_id, "token.revoked")
        await self._events.revoked(integration_id, stored.version)
        self._record(integration_id, "revoked", stored.version, started)
        return True

    def _record(self, integration_id: str, outcome: str, version: int, started: float) -> None:
        if self._audit is not None:
            self._audit.record(
                "token.rotated",
                integration_id,
                outcome=outcome,
                principal="registry",
                latency_ms=(time.perf_counter() - started) * 1000,
                data={"version": version},
            )
