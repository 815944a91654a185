"""Access-token signing keys (ES256): stored encrypted, published as JWKS, rotated without breaking live
tokens (a retired key stays published until every token it signed has expired)."""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from skillrelay_auth.oauth_repo import KeyRecord, OAuthStore, utcnow
from skillrelay_common.crypto import SecretBox

ALGORITHM = "ES256"
_CACHE_SECONDS = 1.0
# The active key is replaced automatically once it is this old.
KEY_MAX_AGE = timedelta(days=30)
# A new key is published this long before it signs anything, so no replica's JWKS lacks it when its
# first token arrives (auth caches keys for a second, an edge refetches at most once a second).
PUBLISH_AHEAD = timedelta(seconds=2.5)


class SigningKeys:
    def __init__(self, store: OAuthStore, box: SecretBox, *, access_token_ttl: int) -> None:
        self._store = store
        self._box = box
        self._ttl = access_token_ttl
        self._loaded_at = 0.0
        self._keys: list[KeyRecord] = []
        self._private: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._lock = asyncio.Lock()

    async def ensure_key(self) -> None:
        """Create the first key if there is none (safe when replicas start together)."""
        await self._store.add_signing_key(*self._new_key(), only_if_none=True)
        await self._load(force=True)

    async def rotate(self) -> str:
        """A new active key; the previous one keeps verifying until its tokens have expired."""
        kid, private_pem, jwk = self._new_key()
        await self._store.add_signing_key(kid, private_pem, jwk, only_if_none=False)
        # Keys retired long enough ago that nothing they signed can still be valid are dropped.
        await self._store.drop_keys_retired_before(utcnow() - timedelta(seconds=self._ttl + 300))
        await self._load(force=True)
        return kid

    async def sign(self, claims: dict[str, Any]) -> str:
        await self._load()
        active = next((key for key in self._keys if key.retired_at is None), None)
        if active is None:
            await self.ensure_key()
        elif utcnow() - active.created_at > KEY_MAX_AGE:
            await self.rotate()
        active = self._signing_key()
        private = self._private.get(active.kid)
        if private is None:
            loaded = serialization.load_pem_private_key(self._box.decrypt(active.private_key).encode(), None)
            assert isinstance(loaded, ec.EllipticCurvePrivateKey)
            private = self._private[active.kid] = loaded
        return jwt.encode(claims, private, algorithm=ALGORITHM, headers={"kid": active.kid, "typ": "at+jwt"})

    def _signing_key(self) -> KeyRecord:
        """The newest key published long enough; the previous one signs until then."""
        newest = self._keys[0]  # ordered newest first
        settled = utcnow() - PUBLISH_AHEAD
        return next((key for key in self._keys if key.created_at <= settled), newest)

    async def jwks(self) -> list[dict[str, Any]]:
        await self._load()
        horizon = utcnow() - timedelta(seconds=self._ttl + 60)
        return [
            dict(key.public_jwk) for key in self._keys if key.retired_at is None or key.retired_at > horizon
        ]

    async def decode(self, token: str, *, verify_exp: bool = True) -> dict[str, Any] | None:
        """Claims of one of our own access tokens (signature checked; audience checked by the caller)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return None
        jwk = next((key for key in await self.jwks() if key.get("kid") == kid), None)
        if jwk is None:
            return None
        try:
            public = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
            claims: dict[str, Any] = jwt.decode(
                token,
                public,
                algorithms=[ALGORITHM],
                options={"verify_aud": False, "verify_exp": verify_exp},
            )
        except jwt.PyJWTError:
            return None
        return claims

    async def _load(self, *, force: bool = False) -> None:
        async with self._lock:
            if not force and time.monotonic() - self._loaded_at < _CACHE_SECONDS:
                return
            self._keys = await self._store.signing_keys()
            self._loaded_at = time.monotonic()

    def _new_key(self) -> tuple[str, str, dict[str, Any]]:
        private = ec.generate_private_key(ec.SECP256R1())
        kid = secrets.token_urlsafe(12)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
        return kid, self._box.encrypt(pem), jwk
