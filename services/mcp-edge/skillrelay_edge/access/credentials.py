"""Who is calling: the static access token (asked of auth over NATS, positive answers cached) and, for
integrations with an OAuth connection, the Skillrelay-issued JWT (verified locally against auth's JWKS).

Revocation contract: auth answers a rotate only after every live replica acknowledged
``EDGE_CREDENTIALS_INVALIDATE``. A replica trusts its cache only while its NATS connection is up, has
not reconnected since the cache was filled, and a NATS round trip succeeded within
``TRUST_WINDOW_SECONDS`` — otherwise it drops the cache and asks auth again (fails closed: 503 when auth
cannot be reached). An answer from auth that was in flight while an invalidation arrived is not trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jwt
import structlog

from skillrelay_common.ids import hash_secret
from skillrelay_common.messaging import Bus, encode
from skillrelay_common.schemas.auth import (
    EdgeHeartbeat,
    GetJwks,
    InvalidateCredentials,
    InvalidationAck,
    Jwks,
    TokenValid,
    VerifyToken,
)
from skillrelay_common.schemas.base import Denied
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import (
    AUTH_JWKS_GET,
    AUTH_TOKEN_VERIFY,
    EDGE_CREDENTIALS_INVALIDATE,
    EDGE_HEARTBEAT_SUBJECT,
)

_log = structlog.get_logger("skillrelay.edge.credentials")

HEARTBEAT_INTERVAL_SECONDS = 1.0
# The cache is trusted only if one of our own messages came back through NATS this recently (auth waits
# at least this long for a replica that did not acknowledge an invalidation).
TRUST_WINDOW_SECONDS = 2.0
CACHE_MAX_ENTRIES = 10_000
CACHE_MAX_AGE_SECONDS = 300.0
VERIFY_TIMEOUT_SECONDS = 2.0
JWT_ALGORITHM = "ES256"
JWT_LEEWAY_SECONDS = 10
JWKS_REFETCH_MIN_INTERVAL_SECONDS = 1.0
# Keys are also refreshed in the background, so retired ones leave and new ones arrive without a miss.
JWKS_REFRESH_SECONDS = 60.0
# Headers that would let a token choose its own verification key.
_FORBIDDEN_JWT_HEADERS = ("jku", "x5u", "jwk", "x5c", "crit")


@dataclass(frozen=True)
class Principal:
    kind: Literal["static", "oauth"]
    id: str  # "static:v<version>" or "oauth:<subject>" — also the session binding
    token_version: int  # static token version checked on this request
    subject: str | None = None  # OAuth subject (end user) when kind == "oauth"
    contact_id: str | None = None


@dataclass(frozen=True)
class AuthFailure:
    status: int  # 401 (or 503 when auth is unreachable / cache untrusted)
    reason: str  # safe to log/audit, never contains the token
    # 'Bearer resource_metadata="…"' for an OAuth-gated integration, 'Bearer realm="…"' for a static-token
    # one (+ error=… where fitting); None with a 503.
    www_authenticate: str | None


@dataclass
class _CachedToken:
    version: int
    cached_at: float


def mcp_endpoint_url(settings: Settings, integration_id: str) -> str:
    """The MCP endpoint of an integration: the protected resource and every access token's audience."""
    return f"{settings.http.edge_public_url}/api/v1/integration/mcpserver/{integration_id}/mcp"


def resource_metadata_url(settings: Settings, integration_id: str) -> str:
    return (
        f"{settings.http.edge_public_url}/.well-known/oauth-protected-resource"
        f"/api/v1/integration/mcpserver/{integration_id}/mcp"
    )


def oauth_issuer(settings: Settings, integration_id: str) -> str:
    return f"{settings.http.auth_public_url}/oauth/{integration_id}"


def bearer_token(authorization_header: str | None) -> str | None:
    if not authorization_header:
        return None
    scheme, _, value = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value or None


class CredentialVerifier:
    def __init__(self, bus: Bus, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._bus = bus
        self._settings = settings
        self._clock = clock
        self._cache: dict[str, dict[str, _CachedToken]] = {}
        self._cache_size = 0
        # Bumped on every invalidation (per integration) and on every loss of trust (global), so an
        # answer from auth that was in flight meanwhile is not cached or believed.
        self._epoch = 0
        self._integration_epochs: dict[str, int] = {}
        self._seen_reconnects: int | None = None
        self._last_round_trip: float | None = None  # None: not started, the cache is never used
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._echo_subscription: Any = None
        self._echo_subject = ""
        self._jwks: dict[str, Any] = {}
        self._jwks_fetched_at: float | None = None
        self._jwks_lock = asyncio.Lock()
        self._revoked_jtis: dict[str, float] = {}
        # Told the integration whose credentials were revoked (streams that outlive a request end).
        self._revocation_listeners: list[Callable[[str], None]] = []

    def add_revocation_listener(self, listener: Callable[[str], None]) -> None:
        self._revocation_listeners.append(listener)

    # -- lifecycle -------------------------------------------------------------------------------

    def register(self, bus: Bus) -> None:
        bus.serve(EDGE_CREDENTIALS_INVALIDATE, self._on_invalidate)

    async def start(self) -> None:
        self._seen_reconnects = self._reconnects()
        self._last_round_trip = self._clock()
        # The round-trip probe: our own messages coming back through the server on a private inbox.
        # (Not ``flush(timeout=…)``: in nats-py a PONG arriving after such a timeout kills the read loop.)
        self._echo_subject = self._bus.nc.new_inbox()
        self._echo_subscription = await self._bus.nc.subscribe(self._echo_subject, cb=self._on_echo)
        await self._refresh_jwks(force=True)
        self._heartbeat_task = asyncio.create_task(self._heartbeats(), name="edge-heartbeats")

    async def stop(self) -> None:
        if self._echo_subscription is not None:
            with contextlib.suppress(Exception):
                await self._echo_subscription.unsubscribe()
            self._echo_subscription = None
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
            self._heartbeat_task = None
        self._drop_all()
        self._last_round_trip = None

    def resource_metadata_url(self, integration_id: str) -> str:
        return resource_metadata_url(self._settings, integration_id)

    # -- the check -------------------------------------------------------------------------------

    async def authenticate(
        self, integration: IntegrationInfo, authorization_header: str | None, query_token: str | None
    ) -> Principal | AuthFailure:
        bearer = bearer_token(authorization_header)
        if integration.o_auth_connection_id:
            return await self._authenticate_oauth(integration, bearer, query_token or None)
        token = bearer or query_token
        if not token:
            return self._unauthorized(
                integration, "no access token: send Authorization: Bearer <access token>"
            )
        checked = await self._check_static(integration, token)
        if isinstance(checked, AuthFailure):
            return checked
        return Principal(kind="static", id=f"static:v{checked}", token_version=checked)

    async def _authenticate_oauth(
        self, integration: IntegrationInfo, bearer: str | None, query_token: str | None
    ) -> Principal | AuthFailure:
        # With an OAuth connection the static token travels in the query, the JWT in the header.
        if not bearer:
            return self._unauthorized(integration, "no OAuth access token")
        if not query_token:
            return self._unauthorized(integration, "static token missing from the query", "invalid_token")
        checked = await self._check_static(integration, query_token)
        if isinstance(checked, AuthFailure):
            return checked
        claims = await self._verify_jwt(integration, bearer)
        if isinstance(claims, str):
            return self._unauthorized(integration, claims, "invalid_token")
        subject = str(claims["sub"])
        contact = claims.get("cid")
        return Principal(
            kind="oauth",
            id=f"oauth:{subject}",
            token_version=checked,
            subject=subject,
            contact_id=contact if isinstance(contact, str) else None,
        )

    def _unauthorized(
        self, integration: IntegrationInfo, reason: str, error: str | None = None
    ) -> AuthFailure:
        """A 401 challenge (RFC 6750 §3). Only an OAuth-gated integration names its protected resource
        metadata: a client that finds ``resource_metadata`` starts OAuth discovery and registration, which
        a static-token integration does not offer, and would report that failure instead of the missing
        token (mcp-remote did)."""
        parts = []
        if integration.o_auth_connection_id:
            if error:
                parts.append(f'error="{error}"')
                parts.append(f'error_description="{reason}"')
            parts.append(f'resource_metadata="{self.resource_metadata_url(integration.id)}"')
        else:
            parts.append(f'realm="{mcp_endpoint_url(self._settings, integration.id)}"')
            if error:
                parts.append(f'error="{error}"')
                parts.append(f'error_description="{reason}"')
        return AuthFailure(status=401, reason=reason, www_authenticate="Bearer " + ", ".join(parts))

    # -- static tokens ---------------------------------------------------------------------------

    async def _check_static(self, integration: IntegrationInfo, token: str) -> int | AuthFailure:
        integration_id = integration.id
        token_hash = hash_secret(token)
        if self._trusted():
            cached = self._cache.get(integration_id, {}).get(token_hash)
            if cached is not None and self._clock() - cached.cached_at < CACHE_MAX_AGE_SECONDS:
                return cached.version
        if not self._bus.nc.is_connected:
            return AuthFailure(status=503, reason="NATS connection down", www_authenticate=None)
        for _ in range(3):
            epoch = self._epoch_of(integration_id)
            reply = await self._bus.request(
                AUTH_TOKEN_VERIFY,
                VerifyToken(integration_id=integration_id, token=token),
                timeout=VERIFY_TIMEOUT_SECONDS,
            )
            if isinstance(reply, Denied):
                return self._unauthorized(integration, "invalid static access token", "invalid_token")
            if not isinstance(reply, TokenValid):
                return AuthFailure(status=503, reason="auth service unreachable", www_authenticate=None)
            if self._epoch_of(integration_id) != epoch:
                continue  # an invalidation arrived while auth was answering: ask again
            if self._trusted():
                self._remember(integration_id, token_hash, reply.version)
            return reply.version
        return AuthFailure(status=503, reason="credentials changing too fast", www_authenticate=None)

    def _epoch_of(self, integration_id: str) -> tuple[int, int]:
        return (self._epoch, self._integration_epochs.get(integration_id, 0))

    def _remember(self, integration_id: str, token_hash: str, version: int) -> None:
        if self._cache_size >= CACHE_MAX_ENTRIES:
            self._cache.clear()
            self._cache_size = 0
        entries = self._cache.setdefault(integration_id, {})
        if token_hash not in entries:
            self._cache_size += 1
        entries[token_hash] = _CachedToken(version, self._clock())

    def _drop_all(self) -> None:
        self._epoch += 1
        self._cache.clear()
        self._cache_size = 0

    def _reconnects(self) -> int:
        return int(self._bus.nc.stats.get("reconnects", 0))

    def _trusted(self) -> bool:
        """Whether the cache may be believed now; drops it when trust was lost or a reconnect happened."""
        if self._last_round_trip is None:
            return False
        if not self._bus.nc.is_connected:
            self._drop_all()
            return False
        reconnects = self._reconnects()
        if reconnects != self._seen_reconnects:
            # Invalidations may have been missed while away: resynchronise by forgetting everything.
            self._seen_reconnects = reconnects
            self._drop_all()
            self._jwks_fetched_at = None
        if self._clock() - self._last_round_trip > TRUST_WINDOW_SECONDS:
            self._drop_all()
            return False
        return True

    async def _on_invalidate(self, request: InvalidateCredentials) -> InvalidationAck:
        self._integration_epochs[request.integration_id] = (
            self._integration_epochs.get(request.integration_id, 0) + 1
        )
        dropped = self._cache.pop(request.integration_id, None)
        if dropped:
            self._cache_size -= len(dropped)
        if request.revoked_jti:
            self._revoked_jtis[request.revoked_jti] = request.revoked_jti_expires_at or (time.time() + 3600)
            self._prune_revoked_jtis()
        for listener in self._revocation_listeners:
            listener(request.integration_id)
        return InvalidationAck(instance_id=self._bus.instance_id)

    async def _on_echo(self, _: Any) -> None:
        # Everything the server sent us before this echo has been received: we still hear revocations.
        self._last_round_trip = self._clock()

    async def _heartbeats(self) -> None:
        while True:
            try:
                beat = EdgeHeartbeat(instance_id=self._bus.instance_id, sent_at=time.time())
                await self._bus.nc.publish(EDGE_HEARTBEAT_SUBJECT, encode(beat))
                await self._bus.nc.publish(self._echo_subject, b"")
                fetched = self._jwks_fetched_at
                if fetched is None or self._clock() - fetched > JWKS_REFRESH_SECONDS:
                    await self._refresh_jwks(force=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("edge.nats.heartbeat_failed", error=type(exc).__name__)
                self._drop_all()
            await asyncio.sleep(HEARTBEAT_INTERVAL_SECONDS)

    # -- OAuth access tokens ---------------------------------------------------------------------

    async def _refresh_jwks(self, *, force: bool = False) -> None:
        async with self._jwks_lock:
            now = self._clock()
            if (
                not force
                and self._jwks_fetched_at is not None
                and now - self._jwks_fetched_at < JWKS_REFETCH_MIN_INTERVAL_SECONDS
            ):
                return
            reply = await self._bus.request(AUTH_JWKS_GET, GetJwks(), timeout=VERIFY_TIMEOUT_SECONDS)
            if not isinstance(reply, Jwks):
                _log.warning("edge.jwks.unavailable")
                return
            keys: dict[str, Any] = {}
            for jwk in reply.keys:
                kid = jwk.get("kid")
                if not isinstance(kid, str) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
                    continue
                try:
                    keys[kid] = jwt.PyJWK(jwk, algorithm=JWT_ALGORITHM).key
                except jwt.PyJWTError:
                    continue
            self._jwks = keys
            self._jwks_fetched_at = self._clock()

    async def _key_for(self, kid: str) -> Any | None:
        key = self._jwks.get(kid)
        if key is None:
            await self._refresh_jwks()  # rate-limited: an unknown kid cannot make us hammer auth
            key = self._jwks.get(kid)
        return key

    async def _verify_jwt(self, integration: IntegrationInfo, token: str) -> dict[str, Any] | str:
        """The claims, or a reason (safe to log) why the token is refused."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return "malformed access token"
        if header.get("alg") != JWT_ALGORITHM:
            return "access token algorithm not allowed"
        if any(name in header for name in _FORBIDDEN_JWT_HEADERS):
            return "access token header names its own key"
        kid = header.get("kid")
        if not isinstance(kid, str):
            return "access token has no key id"
        key = await self._key_for(kid)
        if key is None:
            return "access token signed by an unknown key"
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[JWT_ALGORITHM],
                audience=mcp_endpoint_url(self._settings, integration.id),
                issuer=oauth_issuer(self._settings, integration.id),
                leeway=JWT_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            return "access token expired"
        except jwt.InvalidAudienceError:
            return "access token is for another resource"
        except jwt.InvalidIssuerError:
            return "access token from another issuer"
        except jwt.PyJWTError:
            return "access token signature or claims invalid"
        if claims.get("gen") != integration.oauth_generation:
            return "access token issued for an earlier OAuth connection"
        if claims["jti"] in self._revoked_jtis:
            return "access token revoked"
        return claims

    def _prune_revoked_jtis(self) -> None:
        now = time.time()
        for jti, expires in list(self._revoked_jtis.items()):
            if expires < now:
                del self._revoked_jtis[jti]
