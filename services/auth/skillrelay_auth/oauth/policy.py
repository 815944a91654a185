"""What this authorization server allows, said once: scopes, grants, client authentication, redirect URIs,
client ID metadata document URLs, and which text PostgreSQL can store. No framework imports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.common.urls import is_valid_url

SUPPORTED_SCOPES = ("mcp",)
DEFAULT_SCOPE = "mcp"
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
GRANT_TYPES = ("authorization_code", "refresh_token")
MAX_PARAMETER_LENGTH = 4096
MAX_REDIRECT_URIS = 10
MAX_CLIENT_NAME = 200
MAX_URL_LENGTH = 2000
# Client metadata kept beside the registered essentials (shown on the consent page or for audit).
DISPLAY_FIELDS = ("client_uri", "logo_uri", "software_id", "software_version")
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
_UNSAFE_SCHEMES = {"javascript", "data", "file", "vbscript", "about", "blob"}


@dataclass(frozen=True)
class OAuthConfig:
    auth_public_url: str
    edge_public_url: str
    access_token_ttl: int = 300
    refresh_token_ttl: int = 30 * 24 * 3600
    code_ttl: int = 60
    request_ttl: int = 600
    metadata_document_refresh: int = 3600
    # Dynamic client registrations per minute per client address (and per auth replica).
    registrations_per_minute: int = 20
    # A registered client to which no authorization code was issued within this time is deleted.
    unused_client_ttl: int = 7 * 24 * 3600

    def issuer(self, integration_id: str) -> str:
        return f"{self.auth_public_url}/oauth/{integration_id}"

    def resource(self, integration_id: str) -> str:
        """The MCP endpoint the tokens are for (RFC 8707 resource, the JWT's audience)."""
        return f"{self.edge_public_url}/api/v1/integration/mcpserver/{integration_id}/mcp"

    @property
    def upstream_redirect_uri(self) -> str:
        """The single callback URL the owner registers at the IdP for the OAuth connection."""
        return f"{self.auth_public_url}/oauth/callback"


def valid_redirect_uri(uri: str) -> bool:
    """https anywhere, http only to loopback (native apps), or a private-use scheme; never a fragment."""
    if len(uri) > MAX_URL_LENGTH:
        return False
    parts = urlsplit(uri)
    if parts.fragment or not parts.scheme:
        return False
    if parts.scheme in ("http", "https") and not is_valid_url(uri, fragments_allowed=False):
        return False  # Authlib's check: no userinfo that disguises the host (https://a.test@evil.test/)
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme == "http":
        return (parts.hostname or "") in _LOOPBACK_HOSTS
    # Private-use URI schemes of native apps (RFC 8252 section 7.1), e.g. com.example.app:/callback.
    return parts.scheme not in _UNSAFE_SCHEMES


def valid_metadata_document_url(client_id: str) -> bool:
    """A client_id that names a client ID metadata document: an https URL with a path, nothing odd."""
    parts = urlsplit(client_id)
    return (
        parts.scheme == "https"
        and bool(parts.hostname)
        and parts.path not in ("", "/")
        and not parts.fragment
        and not parts.username
        and not parts.password
        and "/./" not in parts.path + "/"
        and "/../" not in parts.path + "/"
        and len(client_id) <= MAX_URL_LENGTH
    )


def supported_scope(scope: str) -> bool:
    return set(scope.split()) <= set(SUPPORTED_SCOPES)


def normal_scope(scope: str | None) -> str:
    """The scope as stored and issued: the default when none is asked for, sorted, no repeats."""
    return " ".join(sorted(set((scope or DEFAULT_SCOPE).split()))) or DEFAULT_SCOPE


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def error_text(text: str) -> str:
    """An error_description OAuth allows (RFC 6749 section 5.2: printable ASCII without " and \\)."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in text)[:300]


def storable(value: Any) -> bool:
    """Every string in ``value`` (a decoded JSON document) can be stored in PostgreSQL text and
    JSON: no NUL character (which PostgreSQL refuses) and no lone surrogate (which is not UTF-8).
    Walked without recursion: the document may be nested as deep as the JSON decoder allows."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item or not (item.isascii() or _encodes_as_utf8(item)):
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _encodes_as_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
