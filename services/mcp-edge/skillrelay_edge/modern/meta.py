"""Per-request ``_meta`` of the stateless era, the version rules, and the era's error codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skillrelay_edge.calls.context import INVALID_PARAMS
from skillrelay_worker.protocol import LOG_LEVELS

MODERN_VERSIONS: tuple[str, ...] = ("2026-07-28",)
MODERN_VERSION = MODERN_VERSIONS[0]

PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"

# Error codes the 2026-07-28 specification allocates (-32020 … -32099 is its own range).
HEADER_MISMATCH = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022


class ModernError(Exception):
    """A request the stateless era refuses: a JSON-RPC error and the HTTP status the spec names."""

    def __init__(self, code: int, message: str, status: int = 400, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.data = data


@dataclass(frozen=True, slots=True)
class RequestMeta:
    protocol_version: str
    client_capabilities: dict[str, Any]
    client_info: dict[str, Any] | None
    # None: the client asked for no log messages, so none are sent (2026-07-28 rule).
    log_level: str | None


def names_modern_version(params: Any) -> bool:
    """Whether a request's params carry the stateless era's per-request protocol version."""
    if not isinstance(params, dict):
        return False
    meta = params.get("_meta")
    return isinstance(meta, dict) and PROTOCOL_VERSION_KEY in meta


def read_meta(params: Any) -> RequestMeta:
    """The request's ``_meta``; a missing required field is Invalid params with HTTP 400."""
    meta = params.get("_meta") if isinstance(params, dict) else None
    if not isinstance(meta, dict):
        raise ModernError(INVALID_PARAMS, "Invalid params: _meta is required")
    version = meta.get(PROTOCOL_VERSION_KEY)
    if not isinstance(version, str) or not version:
        raise ModernError(INVALID_PARAMS, f"Invalid params: _meta is missing {PROTOCOL_VERSION_KEY}")
    capabilities = meta.get(CLIENT_CAPABILITIES_KEY)
    if not isinstance(capabilities, dict):
        raise ModernError(INVALID_PARAMS, f"Invalid params: _meta is missing {CLIENT_CAPABILITIES_KEY}")
    info = meta.get(CLIENT_INFO_KEY)
    level = meta.get(LOG_LEVEL_KEY)
    if level is not None and level not in LOG_LEVELS:
        raise ModernError(
            INVALID_PARAMS, f"Invalid params: {LOG_LEVEL_KEY} must be one of {', '.join(LOG_LEVELS)}"
        )
    return RequestMeta(
        protocol_version=version,
        client_capabilities=capabilities,
        client_info=info if isinstance(info, dict) else None,
        log_level=level,
    )


def check_version(header_version: str | None, meta: RequestMeta, supported: tuple[str, ...]) -> None:
    """The ``MCP-Protocol-Version`` header must be there and equal the body's version (-32020), and
    the version must be one this server speaks (-32022, listing what it supports)."""
    if header_version is None:
        raise ModernError(HEADER_MISMATCH, "Header mismatch: the MCP-Protocol-Version header is required")
    if header_version != meta.protocol_version:
        raise ModernError(
            HEADER_MISMATCH,
            f"Header mismatch: MCP-Protocol-Version {header_version[:40]!r} does not match "
            f"_meta {PROTOCOL_VERSION_KEY} {meta.protocol_version[:40]!r}",
        )
    if meta.protocol_version not in MODERN_VERSIONS:
        raise unsupported_version(meta.protocol_version, supported)


def unsupported_version(requested: str, supported: tuple[str, ...]) -> ModernError:
    return ModernError(
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        data={"supported": list(supported), "requested": requested},
    )
