"""The Streamable HTTP rules that do not depend on the integration: Host/Origin (DNS rebinding),
Accept, Content-Type, ``MCP-Protocol-Version`` and body size. Pure functions over header values so
they are cheap on the hot path and testable without a server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from skillrelay_edge.transport import jsonrpc

SUPPORTED_VERSIONS: tuple[str, ...] = ("2025-11-25", "2025-06-18", "2025-03-26")
LATEST_VERSION = SUPPORTED_VERSIONS[0]
# Assumed when a request carries no MCP-Protocol-Version header (spec: backwards compatibility).
DEFAULT_HEADER_VERSION = "2025-03-26"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# JSON-RPC code the reference SDK uses for transport-level rejections.
TRANSPORT_ERROR = -32000


@dataclass(frozen=True, slots=True)
class Rejection:
    """An HTTP answer that ends the request before any MCP processing."""

    status: int
    message: str
    code: int = TRANSPORT_ERROR
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return jsonrpc.error(None, self.code, self.message)


def negotiate_version(requested: Any) -> str:
    """The version to answer an initialize with: the client's when supported, else the newest."""
    return requested if isinstance(requested, str) and requested in SUPPORTED_VERSIONS else LATEST_VERSION


def _hostname(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HttpRules:
    """Checks built once from the edge's public URL and listening host."""

    def __init__(self, public_url: str, listen_host: str, max_body_bytes: int) -> None:
        public = urlsplit(public_url)
        self.public_origin = f"{public.scheme}://{public.netloc}".lower()
        self.allowed_hosts = set(LOOPBACK_HOSTS)
        if public.hostname:
            self.allowed_hosts.add(public.hostname.lower())
        if listen_host not in {"0.0.0.0", "::", ""}:  # noqa: S104
            self.allowed_hosts.add(listen_host.lower())
        self.max_body_bytes = max_body_bytes
        self._host_cache: dict[tuple[str | None, str | None], Rejection | None] = {}

    def check_host_and_origin(self, host: str | None, origin: str | None) -> Rejection | None:
        """DNS-rebinding protection: the Host must name this edge, and a browser Origin must be the
        edge's public origin or a loopback origin. Requests without Origin (non-browser) pass."""
        key = (host, origin)
        if key in self._host_cache:
            return self._host_cache[key]
        verdict = self._check_host_and_origin(host, origin)
        if len(self._host_cache) > 1024:
            self._host_cache.clear()
        self._host_cache[key] = verdict
        return verdict

    def _check_host_and_origin(self, host: str | None, origin: str | None) -> Rejection | None:
        if host is not None and _hostname(host) not in self.allowed_hosts:
            return Rejection(403, f"Invalid Host: {host[:100]}")
        if origin is None:
            return None
        parsed = urlsplit(origin.strip())
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            return Rejection(403, "Invalid Origin")
        if f"{parsed.scheme}://{parsed.netloc}".lower() == self.public_origin:
            return None
        if parsed.hostname.lower() in LOOPBACK_HOSTS:
            return None
        return Rejection(403, f"Invalid Origin: {origin[:100]}")

    def check_post_headers(
        self, content_type: str | None, accept: str | None, content_length: str | None
    ) -> Rejection | None:
        if not _accepts(accept, "application/json") or not _accepts(accept, "text/event-stream"):
            return Rejection(
                406, "Not Acceptable: Accept must include application/json and text/event-stream"
            )
        if content_type is None or content_type.split(";", 1)[0].strip().lower() != "application/json":
            return Rejection(415, "Unsupported Media Type: Content-Type must be application/json")
        if content_length is not None:
            try:
                length = int(content_length)
            except ValueError:
                return Rejection(400, "Bad Request: invalid Content-Length")
            if length > self.max_body_bytes:
                return Rejection(413, f"Payload Too Large: at most {self.max_body_bytes} bytes")
        return None

    @staticmethod
    def check_get_headers(accept: str | None) -> Rejection | None:
        if not _accepts(accept, "text/event-stream"):
            return Rejection(406, "Not Acceptable: Accept must include text/event-stream")
        return None

    @staticmethod
    def check_protocol_version(value: str | None) -> Rejection | None:
        if value is None or value in SUPPORTED_VERSIONS:
            return None
        return Rejection(
            400,
            f"Bad Request: unsupported MCP-Protocol-Version {value[:40]!r}; "
            f"supported: {', '.join(SUPPORTED_VERSIONS)}",
        )


_accept_cache: dict[tuple[str, str], bool] = {}


def _accepts(accept: str | None, media_type: str) -> bool:
    if not accept:
        return False
    key = (accept, media_type)
    cached = _accept_cache.get(key)
    if cached is None:
        if len(_accept_cache) > 1024:
            _accept_cache.clear()
        cached = _accept_cache[key] = _parse_accepts(accept, media_type)
    return cached


def _parse_accepts(accept: str, media_type: str) -> bool:
    major = media_type.split("/", 1)[0]
    for part in accept.split(","):
        item = part.split(";", 1)[0].strip().lower()
        if item in (media_type, "*/*", f"{major}/*"):
            return True
    return False
