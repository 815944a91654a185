"""Local JWT verification in CredentialVerifier: what a forged or misused access token gets."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from skillrelay_common.schemas.auth import GetJwks, InvalidateCredentials, Jwks, TokenValid, VerifyToken
from skillrelay_common.schemas.base import Unavailable
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_common.settings import HttpSettings, Settings
from skillrelay_common.subjects import AUTH_JWKS_GET, AUTH_TOKEN_VERIFY
from skillrelay_edge.access.credentials import AuthFailure, CredentialVerifier, Principal

SETTINGS = Settings(
    http=HttpSettings(edge_public_url="https://edge.example", auth_public_url="https://auth.example")
)
INTEGRATION = IntegrationInfo(
    id="mcpserver_o", owner_id="u", name="o", skillset_id="k", o_auth_connection_id="c", oauth_generation=3
)
AUDIENCE = "https://edge.example/api/v1/integration/mcpserver/mcpserver_o/mcp"
ISSUER = "https://auth.example/oauth/mcpserver_o"
KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "ES256", "use": "sig"}


class FakeNats:
    is_connected = True
    stats = {"reconnects": 0}


class FakeBus:
    def __init__(self) -> None:
        self.nc = FakeNats()
        self.instance_id = "edge-fake"
        self.keys = [public_jwk(KEY, "k1")]
        self.jwks_calls = 0

    async def request(self, endpoint: Any, message: Any, *, timeout: float | None = None) -> Any:
        if endpoint is AUTH_JWKS_GET:
            assert isinstance(message, GetJwks)
            self.jwks_calls += 1
            return Jwks(keys=list(self.keys))
        if endpoint is AUTH_TOKEN_VERIFY:
            assert isinstance(message, VerifyToken)
            return TokenValid(integration_id=message.integration_id, version=7)
        return Unavailable()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "exp": now + 300,
        "jti": "jti-1",
        "client_id": "client_1",
        "scope": "mcp",
        "gen": 3,
        "cid": "contact_1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], *, key: Any = KEY, kid: str | None = "k1", **headers: Any) -> str:
    extra = {"kid": kid, **headers} if kid is not None else headers
    return jwt.encode(payload, key, algorithm="ES256", headers=extra)


async def verifier() -> tuple[CredentialVerifier, FakeBus]:
    bus = FakeBus()
    v = CredentialVerifier(bus, SETTINGS)  # type: ignore[arg-type]
    v._seen_reconnects = 0
    v._last_round_trip = v._clock()
    await v._refresh_jwks(force=True)
    return v, bus


async def check(v: CredentialVerifier, token: str) -> Principal | AuthFailure:
    return await v.authenticate(INTEGRATION, f"Bearer {token}", "sr_mcp_static")


async def refused(v: CredentialVerifier, token: str) -> str:
    result = await check(v, token)
    assert isinstance(result, AuthFailure), result
    assert result.status == 401
    assert result.www_authenticate is not None and 'error="invalid_token"' in result.www_authenticate
    assert token not in result.reason
    return result.reason


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_a_valid_token_gives_the_oauth_principal() -> None:
    v, _ = await verifier()
    result = await check(v, sign(claims()))
    assert result == Principal(
        kind="oauth", id="oauth:alice", token_version=7, subject="alice", contact_id="contact_1"
    )


async def test_expired_wrong_audience_wrong_issuer_and_old_generation_are_refused() -> None:
    v, _ = await verifier()
    now = int(time.time())
    assert await refused(v, sign(claims(exp=now - 60, iat=now - 400))) == "access token expired"
    assert await refused(
        v, sign(claims(aud="https://edge.example/api/v1/integration/mcpserver/other/mcp"))
    ) == ("access token is for another resource")
    assert await refused(v, sign(claims(iss="https://evil.example/oauth/mcpserver_o"))) == (
        "access token from another issuer"
    )
    assert "earlier OAuth connection" in await refused(v, sign(claims(gen=2)))
    assert await refused(v, sign(claims(jti=None))) == "access token signature or claims invalid"
    # Small leeway: a token that expired a few seconds ago still passes.
    assert isinstance(await check(v, sign(claims(exp=now - 3))), Principal)


async def test_alg_none_and_hs256_with_the_public_key_are_refused() -> None:
    v, _ = await verifier()
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{_b64(claims())}."
    assert await refused(v, unsigned) == "access token algorithm not allowed"
    public_pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib
    import hmac

    header = _b64({"alg": "HS256", "typ": "JWT", "kid": "k1"})
    body = _b64(claims())
    mac = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    confused = f"{header}.{body}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"
    assert await refused(v, confused) == "access token algorithm not allowed"
    assert await refused(v, "not.a.jwt") == "malformed access token"


async def test_tokens_that_name_their_own_key_are_refused() -> None:
    v, _ = await verifier()
    for header in (
        {"jku": "https://evil.example/jwks"},
        {"x5u": "https://evil.example/c"},
        {"jwk": public_jwk(OTHER_KEY, "k1")},
    ):
        assert (
            await refused(v, sign(claims(), key=OTHER_KEY, **header))
            == "access token header names its own key"
        )
    assert await refused(v, sign(claims(), key=OTHER_KEY)) == "access token signature or claims invalid"
    assert await refused(v, sign(claims(), kid=None)) == "access token has no key id"


async def test_unknown_kid_refetches_jwks_once_rate_limited_and_finds_rotated_keys() -> None:
    v, bus = await verifier()
    calls = bus.jwks_calls
    v._jwks_fetched_at = v._clock()
    assert await refused(v, sign(claims(), kid="k-unknown")) == "access token signed by an unknown key"
    assert await refused(v, sign(claims(), kid="k-unknown-2")) == "access token signed by an unknown key"
    assert bus.jwks_calls == calls  # fetched moments ago: at most one refetch a second, however many bad kids
    # After the rate-limit window a rotated key is picked up on first sight.
    bus.keys.append(public_jwk(OTHER_KEY, "k2"))
    v._jwks_fetched_at = (v._jwks_fetched_at or 0) - 60
    assert isinstance(await check(v, sign(claims(), key=OTHER_KEY, kid="k2")), Principal)
    assert bus.jwks_calls == calls + 1
    assert isinstance(await check(v, sign(claims())), Principal)  # the old key still verifies


async def test_a_revoked_jti_is_refused_until_it_expires() -> None:
    v, _ = await verifier()
    token = sign(claims(jti="jti-revoked"))
    assert isinstance(await check(v, token), Principal)
    await v._on_invalidate(
        InvalidateCredentials(
            integration_id=INTEGRATION.id, revoked_jti="jti-revoked", revoked_jti_expires_at=time.time() + 300
        )
    )
    assert await refused(v, token) == "access token revoked"
