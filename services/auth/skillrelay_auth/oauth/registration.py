"""Dynamic client registration (RFC 7591) on Authlib. Registration is open (MCP clients register
themselves) and rate-limited per address by the route; this policy runs before Authlib's own checks
of the metadata against the server's metadata (scopes, grant types, response types, auth methods)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from authlib.oauth2.rfc7591 import (
    ClientMetadataClaims,
    ClientRegistrationEndpoint,
    InvalidClientMetadataError,
    InvalidRedirectURIError,
)

from skillrelay_auth.oauth.framework import Answer, JsonBody, JsonBodyRequest, in_thread, on_loop
from skillrelay_auth.oauth.parts import OAuthParts
from skillrelay_auth.oauth.policy import (
    AUTH_METHODS,
    DISPLAY_FIELDS,
    GRANT_TYPES,
    MAX_CLIENT_NAME,
    MAX_REDIRECT_URIS,
    MAX_URL_LENGTH,
    SUPPORTED_SCOPES,
    storable,
    supported_scope,
    valid_redirect_uri,
)
from skillrelay_auth.oauth_repo import ClientRecord, utcnow
from skillrelay_common.ids import hash_secret, new_id, new_secret
from skillrelay_common.schemas.registry import IntegrationInfo


def client_metadata(body: Any) -> dict[str, Any]:
    """The registration request as this server accepts it, defaults filled in; unusable display
    fields are dropped rather than refused (clients send all sorts)."""
    if not isinstance(body, dict):
        raise InvalidClientMetadataError("the body must be a JSON object")
    if not storable(body):
        raise InvalidClientMetadataError("client metadata may not contain NUL characters or invalid text")
    uris = body.get("redirect_uris")
    if (
        not isinstance(uris, list)
        or not uris
        or len(uris) > MAX_REDIRECT_URIS
        or not all(isinstance(u, str) for u in uris)
    ):
        raise InvalidRedirectURIError(f"redirect_uris must list 1 to {MAX_REDIRECT_URIS} URIs")
    if not all(valid_redirect_uri(u) for u in uris):
        raise InvalidRedirectURIError(
            "redirect URIs must be https, http on loopback, or a private-use scheme"
        )
    method = body.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise InvalidClientMetadataError(
            f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}"
        )
    grants = body.get("grant_types", ["authorization_code"])
    if (
        not isinstance(grants, list)
        or not set(grants) <= set(GRANT_TYPES)
        or "authorization_code" not in grants
    ):
        raise InvalidClientMetadataError("grant_types may hold authorization_code and refresh_token")
    if body.get("response_types", ["code"]) != ["code"]:
        raise InvalidClientMetadataError("response_types must be [code]")
    name = body.get("client_name")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_CLIENT_NAME):
        raise InvalidClientMetadataError(
            f"client_name must be a string of at most {MAX_CLIENT_NAME} characters"
        )
    scope = body.get("scope")
    if scope is not None and (not isinstance(scope, str) or not supported_scope(scope)):
        raise InvalidClientMetadataError(f"scope may hold {' '.join(SUPPORTED_SCOPES)}")
    metadata: dict[str, Any] = {
        "redirect_uris": list(uris),
        "token_endpoint_auth_method": method,
        "grant_types": list(grants),
        "response_types": ["code"],
        **{
            k: body[k]
            for k in DISPLAY_FIELDS
            if isinstance(body.get(k), str) and len(body[k]) <= MAX_URL_LENGTH
        },
    }
    if name is not None:
        metadata["client_name"] = name
    if scope is not None:
        metadata["scope"] = scope
    return metadata


class RegistrationClaims(ClientMetadataClaims):  # type: ignore[misc]
    def validate_redirect_uris(self) -> None:
        """Checked already (``client_metadata``): private-use schemes of native apps have no host,
        which Authlib's URL check would refuse."""


class Registration(ClientRegistrationEndpoint):  # type: ignore[misc]
    def __init__(self, server: Any) -> None:
        super().__init__(server, claims_classes=[RegistrationClaims])

    def authenticate_token(self, request: Any) -> str:
        return "open-registration"  # no initial access token (RFC 7591 section 3)

    def get_server_metadata(self) -> dict[str, Any]:
        return dict(self.server.metadata())

    def extract_client_metadata(self, request: Any) -> dict[str, Any]:
        request.payload = JsonBody(client_metadata(request.payload.data))
        return dict(super().extract_client_metadata(request))

    def generate_client_id(self, request: Any) -> str:
        return new_id("client")

    def generate_client_secret(self, request: Any) -> str | None:
        public = request.payload.data.get("token_endpoint_auth_method") == "none"
        return None if public else new_secret("sr_cs", 32)

    def generate_client_info(self, request: Any) -> dict[str, Any]:
        info = dict(super().generate_client_info(request))
        if info["client_secret"] is None:  # a public client has no secret to expire
            del info["client_secret"], info["client_secret_expires_at"]
        return info

    def save_client(self, client_info: dict[str, Any], client_metadata: dict[str, Any], request: Any) -> str:
        on_loop(save_client, self.server.parts, self.server.integration, client_info, client_metadata)
        return str(client_info["client_id"])


async def save_client(
    parts: OAuthParts, integration: IntegrationInfo, info: dict[str, Any], metadata: dict[str, Any]
) -> None:
    now = utcnow()
    secret = info.get("client_secret")
    await parts.store.save_client(
        ClientRecord(
            client_id=info["client_id"],
            integration_id=integration.id,
            kind="registered",
            client_secret_hash=hash_secret(secret) if secret else None,
            token_endpoint_auth_method=metadata["token_endpoint_auth_method"],
            redirect_uris=list(metadata["redirect_uris"]),
            grant_types=list(metadata["grant_types"]),
            client_name=metadata.get("client_name"),
            metadata={k: metadata[k] for k in DISPLAY_FIELDS if k in metadata},
            refreshed_at=now,
        )
    )
    # Registration is where abandoned registrations pile up, so it is also where they go (indexed).
    await parts.store.forget_unused_clients(now - timedelta(seconds=parts.config.unused_client_ttl))


async def register_answer(server: Any, headers: Mapping[str, str], body: Any) -> Answer:
    request = JsonBodyRequest(f"{server.issuer}/register", headers, body)
    answer: Answer = await in_thread(server.create_endpoint_response, Registration.ENDPOINT_NAME, request)
    return answer
