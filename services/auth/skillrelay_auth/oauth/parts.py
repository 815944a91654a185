"""What every endpoint of the authorization server works with: settings, storage, signing keys, clients,
the edge link that revokes access tokens, the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from skillrelay_auth.oauth.clients import ClientDirectory
from skillrelay_auth.oauth.policy import OAuthConfig
from skillrelay_auth.oauth_repo import OAuthStore, RevokedAccess
from skillrelay_auth.signing import SigningKeys
from skillrelay_auth.static_tokens import AuditSink
from skillrelay_common.schemas.registry import IntegrationInfo, OAuthConnectionSecret


class RegistryLookup(Protocol):
    async def integration(self, integration_id: str) -> IntegrationInfo | None:
        """None when unknown; raises ``OAuth2Error`` (503) when the registry cannot be asked."""

    async def connection(self, connection_id: str) -> OAuthConnectionSecret | None: ...


class AccessRevoker(Protocol):
    async def revoke_access(self, revoked: list[RevokedAccess]) -> None:
        """Tell every edge replica to refuse these access tokens (by jti) until they expire."""


@dataclass(frozen=True)
class OAuthParts:
    config: OAuthConfig
    store: OAuthStore
    keys: SigningKeys
    clients: ClientDirectory
    revoker: AccessRevoker
    audit: AuditSink | None = None

    def record(
        self, kind: str, integration_id: str, outcome: str, principal: str | None, data: dict[str, Any]
    ) -> None:
        if self.audit is not None:
            self.audit.record(kind, integration_id, outcome=outcome, principal=principal, data=data)

    async def revoke_family(self, family_id: str) -> None:
        """End a grant: its refresh tokens stop working and the edges refuse its access tokens."""
        revoked = await self.store.revoke_family(family_id)
        if revoked:
            self.record("oauth.grant", revoked[0].integration_id, "revoked", None, {"tokens": len(revoked)})
            await self.revoker.revoke_access(revoked)
