"""Clients of an integration's authorization server: dynamically registered ones (stored), and clients
whose client_id is the https URL of their client ID metadata document (fetched, cached)."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Any, Protocol

from authlib.oauth2.rfc6749 import ClientMixin

from skillrelay_auth.oauth.policy import (
    GRANT_TYPES,
    MAX_CLIENT_NAME,
    normal_scope,
    storable,
    valid_metadata_document_url,
    valid_redirect_uri,
)
from skillrelay_auth.oauth_repo import ClientRecord, OAuthStore, utcnow
from skillrelay_common.ids import hash_secret

# A metadata document that cannot be fetched again is still trusted from the cache this long.
_STALE_DOCUMENT_GRACE = timedelta(days=1)


class ClientDocuments(Protocol):
    async def fetch(self, url: str) -> dict[str, Any]:
        """A client ID metadata document; raises ``ValueError`` when it cannot be used."""


class OAuthClient(ClientMixin):  # type: ignore[misc]
    """Authlib's view of a client record: what it may do and how it authenticates."""

    def __init__(self, record: ClientRecord) -> None:
        self.record = record
        self.client_id = record.client_id

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_default_redirect_uri(self) -> str | None:
        """Only an unambiguous one: a client with several redirect URIs must name one."""
        uris = self.record.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        # The server already refused unsupported scopes (validate_requested_scope).
        return normal_scope(scope)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.record.redirect_uris  # exact string match (OAuth 2.1)

    def check_client_secret(self, client_secret: str) -> bool:
        expected = self.record.client_secret_hash
        return expected is not None and hmac.compare_digest(hash_secret(client_secret), expected)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.record.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.record.grant_types


class ClientDirectory:
    def __init__(self, store: OAuthStore, documents: ClientDocuments, refresh_seconds: int) -> None:
        self._store = store
        self._documents = documents
        self._refresh = timedelta(seconds=refresh_seconds)

    async def find(self, integration_id: str, client_id: str) -> ClientRecord | None:
        """A registered client of this issuer, or a client ID metadata document client."""
        if not client_id:
            return None
        if valid_metadata_document_url(client_id):
            return await self._metadata_document_client(client_id)
        record = await self._store.client(client_id)
        if record is None or record.kind != "registered" or record.integration_id != integration_id:
            return None
        return record

    async def _metadata_document_client(self, url: str) -> ClientRecord | None:
        cached = await self._store.client(url)
        if cached is not None and utcnow() - cached.refreshed_at < self._refresh:
            return cached
        try:
            record = metadata_document_record(url, await self._documents.fetch(url))
        except ValueError:
            usable = cached is not None and utcnow() - cached.refreshed_at < _STALE_DOCUMENT_GRACE
            return cached if usable else None
        await self._store.save_client(record)
        return record


def metadata_document_record(url: str, document: dict[str, Any]) -> ClientRecord:
    """The client a metadata document describes; ``ValueError`` when it cannot be used."""
    if document.get("client_id") != url:
        raise ValueError("the document's client_id is not its own URL")
    uris = document.get("redirect_uris")
    if (
        not isinstance(uris, list)
        or not uris
        or not all(isinstance(u, str) and valid_redirect_uri(u) for u in uris)
    ):
        raise ValueError("the document has no usable redirect_uris")
    if document.get("token_endpoint_auth_method", "none") != "none":
        raise ValueError("metadata-document clients must use token_endpoint_auth_method none")
    if "client_secret" in document:
        raise ValueError("a metadata document must not carry a secret")
    grants = document.get("grant_types", ["authorization_code"])
    if not isinstance(grants, list):
        raise ValueError("grant_types must be a list")
    if not storable(document):
        raise ValueError("the document contains NUL characters or invalid text")
    name = document.get("client_name")
    return ClientRecord(
        client_id=url,
        integration_id=None,
        kind="metadata_document",
        client_secret_hash=None,
        token_endpoint_auth_method="none",
        redirect_uris=list(uris),
        grant_types=[g for g in grants if g in GRANT_TYPES] or ["authorization_code"],
        client_name=name[:MAX_CLIENT_NAME] if isinstance(name, str) else None,
        metadata={k: document[k] for k in ("client_uri", "logo_uri") if isinstance(document.get(k), str)},
        refreshed_at=utcnow(),
    )
