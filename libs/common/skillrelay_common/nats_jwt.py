"""The two JWTs of NATS auth callout, encoded and checked by hand (they are small): the server's
authorization request (read) and the authorization response carrying a user JWT (written).

Format as nats-io/jwt v2: ``base64url(header).base64url(claims).base64url(ed25519 signature)``, header
``{"typ":"JWT","alg":"ed25519-nkey"}``, issuer and subject as nkeys.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import msgspec

from skillrelay_common import nkey

_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(dict[str, Any])


class JwtError(ValueError):
    """Not a NATS JWT, or its signature does not hold."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(claims: dict[str, Any], signer: nkey.KeyPair) -> str:
    """Sign ``claims`` (``iss``, ``iat`` and ``jti`` are filled in) with ``signer``."""
    body = dict(claims, iss=signer.public_key, iat=int(time.time()))
    body.pop("jti", None)
    # As nats-io/jwt: the id is a hash of the claims without it.
    body["jti"] = base64.b32encode(hashlib.sha256(_encoder.encode(body)).digest()).decode().rstrip("=")
    signing_input = _b64(_encoder.encode(_HEADER)) + "." + _b64(_encoder.encode(body))
    return signing_input + "." + _b64(signer.sign(signing_input.encode()))


def decode(token: str, issuer_prefix: int) -> dict[str, Any]:
    """The claims of ``token`` once its signature by its ``iss`` (an nkey of ``issuer_prefix``) holds."""
    try:
        header_part, claims_part, signature_part = token.split(".")
        header = _decoder.decode(_unb64(header_part))
        claims = _decoder.decode(_unb64(claims_part))
        signature = _unb64(signature_part)
    except (ValueError, msgspec.DecodeError):
        raise JwtError("not a JWT") from None
    if header.get("alg") != _HEADER["alg"]:
        raise JwtError("not signed with an nkey")
    issuer = claims.get("iss")
    signing_input = f"{header_part}.{claims_part}".encode()
    if not isinstance(issuer, str) or not nkey.verify(issuer, issuer_prefix, signing_input, signature):
        raise JwtError("bad signature")
    expires = claims.get("exp")
    if isinstance(expires, int) and expires < time.time():
        raise JwtError("expired")
    return claims


def user_jwt(
    *,
    user_nkey: str,
    account: str,
    name: str,
    publish: list[str],
    subscribe: list[str],
    signer: nkey.KeyPair,
    max_responses: int = 1,
) -> str:
    """A user of ``account`` allowed exactly ``publish`` and ``subscribe`` (and ``max_responses``
    replies to each request it receives; 0: none)."""
    permissions: dict[str, Any] = {
        "pub": {"allow": publish},
        "sub": {"allow": subscribe},
        "subs": -1,
        "data": -1,
        "payload": -1,
        "type": "user",
        "version": 2,
    }
    if max_responses:
        permissions["resp"] = {"max": max_responses, "ttl": 0}
    return encode({"sub": user_nkey, "aud": account, "name": name, "nats": permissions}, signer)


def authorization_response(
    *, user_nkey: str, server_id: str, signer: nkey.KeyPair, jwt: str | None = None, error: str | None = None
) -> str:
    """The answer to an authorization request: a user JWT, or an error (the connection is refused)."""
    nats: dict[str, Any] = {"type": "authorization_response", "version": 2}
    if jwt is not None:
        nats["jwt"] = jwt
    if error is not None:
        nats["error"] = error
    return encode({"sub": user_nkey, "aud": server_id, "nats": nats}, signer)
