"""Showing a new secret (an integration's access token, a worker credential) exactly once, on a page
reached by a redirect (see ``RevealCodec``): it crosses the redirect in a cookie limited to that page,
never in a URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request

from skillrelay_registry.dashboard.pages import PREFIX
from skillrelay_registry.dashboard.security import request_session
from skillrelay_registry.dashboard.session import REVEAL_COOKIE, REVEAL_SECONDS, RevealCodec, TokenReveal


@dataclass(frozen=True)
class SecretPage:
    """The one page that shows a record's new secret: ``/dashboard/<collection>/<id>/<name>``."""

    collection: str
    name: str

    def path(self, record_id: str) -> str:
        return f"{PREFIX}/{self.collection}/{record_id}/{self.name}"


TOKEN_PAGE = SecretPage("integrations", "token")
CREDENTIAL_PAGE = SecretPage("workers", "credential")


class Revealer:
    def __init__(self, codec: RevealCodec) -> None:
        self._codec = codec

    def hand_over(
        self,
        request: Request[Any, Any, Any],
        page: SecretPage,
        owner_id: str,
        record_id: str,
        secret: str,
        *,
        rotated: bool,
    ) -> str:
        """Puts the secret in the one-page cookie; returns where to redirect."""
        path = page.path(record_id)
        value = self._codec.encode(owner_id, record_id, secret, rotated=rotated)
        request_session(request).add_cookie(REVEAL_COOKIE, value, path=path, max_age=REVEAL_SECONDS)
        return path

    def take(
        self, request: Request[Any, Any, Any], page: SecretPage, owner_id: str, record_id: str
    ) -> TokenReveal | None:
        """The secret to show now, if any; the cookie is cleared either way, so it shows only once."""
        request_session(request).add_cookie(REVEAL_COOKIE, "", path=page.path(record_id), max_age=0)
        return self._codec.decode(request.cookies.get(REVEAL_COOKIE), owner_id, record_id)
