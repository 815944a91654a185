"""Showing a new access token exactly once, on a page reached by a redirect (see ``RevealCodec``)."""

from __future__ import annotations

from typing import Any

from litestar import Request

from skillrelay_registry.dashboard.pages import PREFIX
from skillrelay_registry.dashboard.security import request_session
from skillrelay_registry.dashboard.session import REVEAL_COOKIE, REVEAL_SECONDS, RevealCodec, TokenReveal


def reveal_path(integration_id: str) -> str:
    return f"{PREFIX}/integrations/{integration_id}/token"


class TokenRevealer:
    def __init__(self, codec: RevealCodec) -> None:
        self._codec = codec

    def hand_over(
        self,
        request: Request[Any, Any, Any],
        owner_id: str,
        integration_id: str,
        token: str,
        *,
        rotated: bool,
    ) -> str:
        """Puts the token in the one-page cookie; returns where to redirect."""
        path = reveal_path(integration_id)
        value = self._codec.encode(owner_id, integration_id, token, rotated=rotated)
        request_session(request).add_cookie(REVEAL_COOKIE, value, path=path, max_age=REVEAL_SECONDS)
        return path

    def take(self, request: Request[Any, Any, Any], owner_id: str, integration_id: str) -> TokenReveal | None:
        """The token to show now, if any; the cookie is cleared either way, so it shows only once."""
        path = reveal_path(integration_id)
        request_session(request).add_cookie(REVEAL_COOKIE, "", path=path, max_age=0)
        return self._codec.decode(request.cookies.get(REVEAL_COOKIE), owner_id, integration_id)
