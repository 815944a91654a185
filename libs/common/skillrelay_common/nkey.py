"""NATS nkeys: Ed25519 keys written as base32 with a type prefix and a CRC-16 (the format nats-server
reads in ``auth_callout.issuer`` and in JWTs).

Small on purpose, on ``cryptography`` (already a dependency): the ``nkeys`` package cannot create a
key or check a signature with a public key alone, and would bring PyNaCl in for that much.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# Prefix bytes of public keys (their first base32 letter: A, U, N) and of seeds (S).
ACCOUNT = 0 << 3
USER = 20 << 3
SERVER = 13 << 3
_SEED = 18 << 3


class NkeyError(ValueError):
    """Not a well-formed nkey (bad base32, prefix or checksum)."""


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _encode(raw: bytes) -> str:
    raw += _crc16(raw).to_bytes(2, "little")
    return base64.b32encode(raw).decode().rstrip("=")


def _decode(text: str) -> bytes:
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise NkeyError("not base32") from None
    if len(raw) < 4:
        raise NkeyError("too short")
    body, checksum = raw[:-2], int.from_bytes(raw[-2:], "little")
    if _crc16(body) != checksum:
        raise NkeyError("bad checksum")
    return body


def public_key_bytes(public: str, prefix: int) -> bytes:
    """The raw Ed25519 key of an encoded public nkey of the given type."""
    body = _decode(public)
    if body[0] != prefix or len(body) != 33:
        raise NkeyError("not a public key of the expected type")
    return body[1:]


def verify(public: str, prefix: int, data: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key_bytes(public, prefix)).verify(signature, data)
    except (InvalidSignature, NkeyError, ValueError):
        return False
    return True


class KeyPair:
    """A signing nkey of one type (an account key signs the auth callout's answers)."""

    def __init__(self, prefix: int, private: Ed25519PrivateKey) -> None:
        self.prefix = prefix
        self._private = private
        raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key = _encode(bytes([prefix]) + raw)

    @classmethod
    def create(cls, prefix: int) -> KeyPair:
        return cls(prefix, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: str) -> KeyPair:
        body = _decode(seed)
        if len(body) != 34 or body[0] & 0xF8 != _SEED:
            raise NkeyError("not an nkey seed")
        prefix = ((body[0] & 0x07) << 5) | ((body[1] & 0xF8) >> 3)
        return cls(prefix, Ed25519PrivateKey.from_private_bytes(body[2:]))

    @property
    def seed(self) -> str:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        raw = self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        first = _SEED | (self.prefix >> 5)
        second = (self.prefix & 0x1F) << 3
        return _encode(bytes([first, second]) + raw)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)
