"""Use cases for worker credentials: create, list, fetch, rotate, delete, and the check NATS asks for
when a worker connects (auth callout). No framework imports.

Only the SHA-256 of a secret is stored. Rotation and deletion answer once the worker connections
that used the old secret are disconnected (``WorkerDisconnector``): a worker cut off reconnects, and
its old secret no longer lets it in.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from skillrelay_common.ids import WORKER_CREDENTIAL, hash_secret, new_id
from skillrelay_worker.credential import WorkerCredential

# Bounded, so a list always fits in one NATS reply.
MAX_PER_OWNER = 100
MAX_NAME = 200
# Compared against when a credential id is unknown, so a miss costs the same as a mismatch.
_ABSENT_HASH = "0" * 64


@dataclass(frozen=True)
class StoredCredential:
    id: str
    owner_id: str
    name: str
    secret_hash: str
    created_at: datetime
    rotated_at: datetime | None = None


@dataclass(frozen=True)
class IssuedCredential:
    stored: StoredCredential
    credential: WorkerCredential


class WorkerCredentialStore(Protocol):
    async def count(self, owner_id: str) -> int: ...

    async def insert(self, credential: StoredCredential) -> None: ...

    async def list(self, owner_id: str) -> list[StoredCredential]:
        """Newest first."""

    async def get(self, credential_id: str) -> StoredCredential | None: ...

    async def replace_secret(
        self, owner_id: str, credential_id: str, secret_hash: str, at: datetime
    ) -> StoredCredential | None: ...

    async def delete(self, owner_id: str, credential_id: str) -> StoredCredential | None: ...


class WorkerDisconnector(Protocol):
    async def disconnect(self, credential_id: str) -> int:
        """Disconnect every worker connected with this credential; how many were."""


class CredentialEvents(Protocol):
    async def changed(self, verb: str, stored: StoredCredential, disconnected: int) -> None: ...


class TooManyCredentials(Exception):
    pass


class InvalidName(ValueError):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


class WorkerCredentials:
    def __init__(
        self,
        store: WorkerCredentialStore,
        disconnector: WorkerDisconnector | None,
        events: CredentialEvents,
    ) -> None:
        self._store = store
        self._disconnector = disconnector
        self._events = events

    async def create(self, owner_id: str, name: str) -> IssuedCredential:
        name = name.strip()
        if not name or len(name) > MAX_NAME or not name.isprintable():
            raise InvalidName(f"name must be 1 to {MAX_NAME} printable characters")
        if await self._store.count(owner_id) >= MAX_PER_OWNER:
            raise TooManyCredentials(f"an owner has at most {MAX_PER_OWNER} worker credentials")
        credential = WorkerCredential.generate(owner_id, new_id(WORKER_CREDENTIAL))
        stored = StoredCredential(
            credential.credential_id, owner_id, name, hash_secret(credential.secret), _now()
        )
        await self._store.insert(stored)
        await self._events.changed("created", stored, 0)
        return IssuedCredential(stored, credential)

    async def list(self, owner_id: str) -> list[StoredCredential]:
        return await self._store.list(owner_id)

    async def get(self, owner_id: str, credential_id: str) -> StoredCredential | None:
        stored = await self._store.get(credential_id)
        return stored if stored is not None and stored.owner_id == owner_id else None

    async def rotate(self, owner_id: str, credential_id: str) -> IssuedCredential | None:
        credential = WorkerCredential.generate(owner_id, credential_id)
        stored = await self._store.replace_secret(
            owner_id, credential_id, hash_secret(credential.secret), _now()
        )
        if stored is None:
            return None
        # The new hash is committed first: a worker cut off below can only come back with the new one.
        disconnected = await self._disconnect(credential_id)
        await self._events.changed("rotated", stored, disconnected)
        return IssuedCredential(stored, credential)

    async def delete(self, owner_id: str, credential_id: str) -> bool:
        stored = await self._store.delete(owner_id, credential_id)
        if stored is None:
            return False
        disconnected = await self._disconnect(credential_id)
        await self._events.changed("deleted", stored, disconnected)
        return True

    async def authorize(self, credential_id: str, secret: str) -> StoredCredential | None:
        """The credential when ``secret`` is its live secret, else None (constant time either way)."""
        stored = await self._store.get(credential_id)
        expected = stored.secret_hash if stored is not None else _ABSENT_HASH
        if not hmac.compare_digest(hash_secret(secret), expected) or stored is None:
            return None
        return stored

    async def _disconnect(self, credential_id: str) -> int:
        if self._disconnector is None:
            return 0
        return await self._disconnector.disconnect(credential_id)
