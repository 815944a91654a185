"""Audit records: a CloudEvents-style envelope (JSON structured mode) around what happened.

Published on ``audit.<integrationId>.<kind>`` into the ``AUDIT`` stream. Version 1 of the envelope is
``type == "dev.skillrelay.audit.v1.<kind>"``; evolve it only by appending optional fields (readers
ignore what they do not know), and bump the version in ``type`` for anything else. A record never
carries a token or a secret: ``details`` goes through ``scrub`` before it is published.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema

SPEC_VERSION = "1.0"
AUDIT_SCHEMA_VERSION = 1
TYPE_PREFIX = f"dev.skillrelay.audit.v{AUDIT_SCHEMA_VERSION}."

# The kinds the services record (TEAM.md). Others are allowed but should be added here first.
AUDIT_KINDS: tuple[str, ...] = (
    "mcp.request",
    "tool.call",
    "auth.failure",
    "token.rotated",
    "oauth.grant",
    "session.opened",
    "session.closed",
    "session.expired",
)


class AuditData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What happened: ``outcome`` is a short word (``ok``, ``error``, ``denied``, ``timeout`` …)."""

    kind: str
    outcome: str
    principal: str | None = None
    latency_ms: float | None = None
    correlation_id: str | None = None
    # Kind-specific facts (tool name, JSON-RPC method, failure reason …), already scrubbed.
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class AuditRecord(msgspec.Struct, kw_only=True):
    """One audit record. ``subject`` is the integration id; ``id`` is also the JetStream message id
    (so a retried publish is de-duplicated by the stream)."""

    specversion: str = SPEC_VERSION
    id: str
    source: str
    type: str
    time: str
    subject: str
    datacontenttype: str = "application/json"
    data: AuditData

    @property
    def kind(self) -> str:
        return self.data.kind

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """Described by its msgspec schema, as a ``Message`` is (for the AsyncAPI document)."""
        from skillrelay_worker.pydantic_schema import msgspec_core_schema

        return msgspec_core_schema(cls)


class AuditPage(msgspec.Struct, kw_only=True):
    """A page of stored records (REST ``audit/list``); ``next_cursor`` is the position (see
    ``audit.read_records``) to pass as ``cursor`` for the next page, absent on the last page."""

    items: list[AuditRecord]
    next_cursor: int | None = None


# --- scrubbing ------------------------------------------------------------------------------------

REDACTED = "[redacted]"
_SECRET_KEY_PARTS = (
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "api_key",
    "apikey",
    "cookie",
    "credential",
    "private_key",
    "signature",
    "assertion",
    "code_verifier",
)
_SECRET_KEYS_EXACT = frozenset({"code", "key", "jwt", "bearer", "auth"})
# Values that look like credentials even under an innocent key, in one alternation so each string
# is scanned once (this runs for every audited MCP request).
_SECRET_VALUE = re.compile(
    r"(?i:\bbearer\s+\S+)"
    r"|\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"  # JWT
    r"|\bsr_[a-z]+_[A-Za-z0-9_-]{16,}"  # Skillrelay bearer secrets (ids.new_secret)
    r"|(?i:[?&](?:access_)?token=)[^&\s]+"
)
MAX_STRING = 512
MAX_ITEMS = 50
MAX_DEPTH = 4


@functools.lru_cache(maxsize=4096)  # the same few keys come again in every record
def _secret_key(key: str) -> bool:
    lowered = key.lower().replace("-", "_")
    if lowered in _SECRET_KEYS_EXACT:
        return True
    # "token_version" and "tokens_issued" are facts, not secrets.
    if lowered.endswith(("_version", "_count", "_id", "_type", "_kind")):
        return False
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def scrub_text(value: str) -> str:
    # Every record repeats a few short strings (its outcome, principal, method, tool name): those are
    # scrubbed once; a longer text is scrubbed each time.
    if len(value) <= _CACHED_STRING:
        return _scrub_short(value)
    return _scrub(value)


def _scrub(value: str) -> str:
    value = _SECRET_VALUE.sub(REDACTED, value)
    if len(value) > MAX_STRING:
        value = value[:MAX_STRING] + "…"
    return value


_CACHED_STRING = 80
_scrub_short = functools.lru_cache(maxsize=2048)(_scrub)


def scrub(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` fit for an audit record: secret-named keys and credential-looking strings
    redacted, strings and collections truncated, anything not JSON-like turned into its type name."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        cleaned: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= MAX_ITEMS:
                cleaned["…"] = f"{len(value) - MAX_ITEMS} more"
                break
            name = scrub_text(str(key))
            cleaned[name] = REDACTED if _secret_key(name) and item is not None else scrub(item, depth + 1)
        return cleaned
    if isinstance(value, list | tuple):
        items = [scrub(item, depth + 1) for item in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"… {len(value) - MAX_ITEMS} more")
        return items
    return f"<{type(value).__name__}>"
