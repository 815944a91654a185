"""Type-prefixed identifiers and secrets from a secure random source."""

from __future__ import annotations

import hashlib
import hmac
import secrets

# Prefixes are part of the public contract (DESIGN.md section 2).
SKILLSET = "skillset"
ABILITY = "ability"
RESOURCE = "resource"
PROMPT = "prompt"
BLUEPRINT = "blueprint"
MCP_SERVER = "mcpserver"
OAUTH_CONNECTION = "oauthconnection"
USER = "user"
WORKER_CREDENTIAL = "workercredential"
SOURCE = "source"


def new_id(prefix: str) -> str:
    """An id such as ``skillset_3kq…``: 128 random bits, URL-safe."""
    return f"{prefix}_{secrets.token_urlsafe(16).replace('-', 'x').replace('_', 'z')}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) > len(prefix) + 1


def new_secret(prefix: str, nbytes: int = 32) -> str:
    """A bearer secret with a recognisable prefix (``sr_mcp_…``) and ``nbytes`` of randomness."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret; such secrets need no slow KDF to resist guessing."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, expected_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), expected_hash)
