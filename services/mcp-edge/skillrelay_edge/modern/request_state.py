"""``requestState``: where a suspended call waits, sealed so only this service can read or make it.

Authenticated encryption (Fernet: AES-CBC + HMAC-SHA256) with a key derived from
``SKILLRELAY_SECRET_KEY``, so every edge replica opens what any other sealed. The sealed payload binds
the state to the integration, the principal, the request (method, name and a digest of its arguments)
and an expiry; anything else presented is refused with Invalid params and never trusted.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec
import structlog

from skillrelay_common.crypto import SecretBox, SecretBoxError
from skillrelay_edge.calls.context import INVALID_PARAMS
from skillrelay_edge.modern.inputs import ResumePoint
from skillrelay_edge.transport.jsonrpc import RpcError

_log = structlog.get_logger("skillrelay.edge.request_state")
PURPOSE = "mcp-request-state"
# Unpadded URL-safe base64 only: a lenient base64 decoder ignores whatever follows the padding, so a
# padded token with text appended would still open. The state travels without padding instead.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,8192}")


class _State(msgspec.Struct, array_like=True):
    integration_id: str
    principal: str
    method: str
    name: str
    digest: str
    call_id: str
    after_seq: int
    deadline: float


_decoder = msgspec.json.Decoder(_State)


def request_digest(arguments: Any) -> str:
    """A digest of the request's salient parameters (its arguments), independent of key order."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class RequestStateCodec:
    def __init__(self, secret_key: str | None, *, clock: Callable[[], float] = time.time) -> None:
        if not secret_key:
            # Tests and single-process runs: a key of this process only (a retry must come back here).
            _log.warning("request_state.ephemeral_key", reason="SKILLRELAY_SECRET_KEY is not set")
            secret_key = secrets.token_urlsafe(32)
        self._box = SecretBox(secret_key, PURPOSE)
        self._clock = clock

    def seal(
        self, *, integration_id: str, principal: str, method: str, name: str, digest: str, resume: ResumePoint
    ) -> str:
        state = _State(
            integration_id, principal, method, name, digest, resume.call_id, resume.after_seq, resume.deadline
        )
        return self._box.encrypt(msgspec.json.encode(state).decode()).rstrip("=")

    def open(
        self, token: Any, *, integration_id: str, principal: str, method: str, name: str, digest: str
    ) -> ResumePoint:
        """The resume point sealed in ``token``; Invalid params when it is not genuine, belongs to
        another integration, principal or request, or has expired."""
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise RpcError(INVALID_PARAMS, "Invalid params: requestState failed verification")
        try:
            state = _decoder.decode(self._box.decrypt(token + "=" * (-len(token) % 4)))
        except (SecretBoxError, msgspec.DecodeError, UnicodeError):
            raise RpcError(INVALID_PARAMS, "Invalid params: requestState failed verification") from None
        if state.integration_id != integration_id or state.principal != principal:
            raise RpcError(INVALID_PARAMS, "Invalid params: requestState belongs to someone else")
        if (state.method, state.name, state.digest) != (method, name, digest):
            raise RpcError(INVALID_PARAMS, "Invalid params: requestState belongs to another request")
        if state.deadline <= self._clock():
            raise RpcError(
                INVALID_PARAMS, "Invalid params: requestState has expired; send the request again without it"
            )
        return ResumePoint(state.call_id, state.after_seq, state.deadline)
