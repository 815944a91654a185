"""Temporary static-token check used only while ``credentials.CredentialVerifier`` (the auth engineer's
module) is absent: asks ``AUTH_TOKEN_VERIFY`` and keeps positive answers for one second."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Literal

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.auth import TokenValid, VerifyToken
from skillrelay_common.schemas.base import Unavailable
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import AUTH_TOKEN_VERIFY

CACHE_SECONDS = 1.0
RESOURCE_PATH = "/.well-known/oauth-protected-resource/api/v1/integration/mcpserver/{id}/mcp"


@dataclass(frozen=True)
class Principal:
    kind: Literal["static", "oauth"]
    id: str
    token_version: int
    subject: str | None = None
    contact_id: str | None = None


@dataclass(frozen=True)
class AuthFailure:
    status: int
    reason: str
    www_authenticate: str | None


class LocalCredentialVerifier:
    def __init__(self, bus: Bus, settings: Settings) -> None:
        self._bus = bus
        self._public_url = settings.http.edge_public_url
        self._cache: dict[tuple[str, bytes], tuple[Principal, float]] = {}

    def register(self, bus: Bus) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def resource_metadata_url(self, integration_id: str) -> str:
        return self._public_url + RESOURCE_PATH.format(id=integration_id)

    def _failure(self, integration_id: str, status: int, reason: str) -> AuthFailure:
        challenge = f'Bearer resource_metadata="{self.resource_metadata_url(integration_id)}"'
        return AuthFailure(status, reason, challenge if status == 401 else None)

    async def authenticate(
        self, integration: IntegrationInfo, authorization_header: str | None, query_token: str | None
    ) -> Principal | AuthFailure:
        token = query_token
        if authorization_header and authorization_header[:7].lower() == "bearer ":
            token = authorization_header[7:].strip()
        if not token:
            return self._failure(integration.id, 401, "missing token")
        key = (integration.id, hashlib.sha256(token.encode()).digest())
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        reply = await self._bus.request(
            AUTH_TOKEN_VERIFY, VerifyToken(integration_id=integration.id, token=token)
        )
        if isinstance(reply, Unavailable):
            return self._failure(integration.id, 503, "auth unavailable")
        if not isinstance(reply, TokenValid):
            return self._failure(integration.id, 401, "invalid token")
        principal = Principal("static", f"static:v{reply.version}", reply.version)
        self._cache[key] = (principal, now + CACHE_SECONDS)
        return principal
