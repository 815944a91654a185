"""The dashboard's sign-in session, carried in one cookie.

Signing in exchanges the API key for a session: the key is checked once by
``RegistryService.authenticate`` and then kept nowhere (not in the cookie, not in memory, not in a
log). The cookie holds only the owner id, the session's CSRF secret and its expiry, encrypted and
authenticated (Fernet: AES-CBC + HMAC-SHA256) with a key derived from ``SKILLRELAY_SECRET_KEY`` for this
purpose alone. Being self-contained, it is served by any registry replica (no sticky sessions). It is
``HttpOnly``, ``SameSite=Strict``, scoped to ``/dashboard``, and ``Secure`` behind https.

A visitor who has not signed in still gets a session (owner ``None``) so that the sign-in form itself
carries a CSRF token.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import msgspec

from skillrelay_common.crypto import SecretBox, SecretBoxError

COOKIE_NAME = "skillrelay_dashboard"
COOKIE_PATH = "/dashboard"
SESSION_PURPOSE = "dashboard-session"
# A signed-in session lasts this long; signing in again starts a new one.
SESSION_SECONDS = 8 * 3600
# An anonymous session (sign-in form only) is renewed whenever it is older than this.
ANONYMOUS_SECONDS = 3600
# The user's name is carried for the header only; a long one is cut so the cookie stays small.
MAX_SHOWN_NAME = 80


class DashboardSession(msgspec.Struct, frozen=True, array_like=True):
    owner_id: str | None
    csrf_token: str
    expires_at: int
    owner_name: str = ""  # shown in the header; appended, so cookies from before still decode

    @property
    def signed_in(self) -> bool:
        return self.owner_id is not None


_decoder = msgspec.json.Decoder(DashboardSession)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


class SessionCodec:
    """Turns sessions into cookie values and back; a tampered, foreign or expired value is ``None``."""

    def __init__(self, secret_key: str, *, clock: Callable[[], float] = time.time) -> None:
        self._box = SecretBox(secret_key, SESSION_PURPOSE)
        self._clock = clock

    def anonymous(self) -> DashboardSession:
        return DashboardSession(None, new_csrf_token(), int(self._clock()) + ANONYMOUS_SECONDS)

    def signed_in(self, owner_id: str, owner_name: str = "") -> DashboardSession:
        """A fresh session (and CSRF token) for ``owner_id``: nothing from before sign-in carries over."""
        return DashboardSession(
            owner_id, new_csrf_token(), int(self._clock()) + SESSION_SECONDS, owner_name[:MAX_SHOWN_NAME]
        )

    def encode(self, session: DashboardSession) -> str:
        return self._box.encrypt(msgspec.json.encode(session).decode())

    def decode(self, value: str | None) -> DashboardSession | None:
        if not value or len(value) > 4096:
            return None
        try:
            session = _decoder.decode(self._box.decrypt(value))
        except (SecretBoxError, msgspec.DecodeError, UnicodeError):
            return None
        if session.expires_at <= self._clock():
            return None
        return session

    def max_age(self, session: DashboardSession) -> int:
        return max(0, session.expires_at - int(self._clock()))


# --- showing a new token once, after a redirect -----------------------------------------------------

REVEAL_COOKIE = "skillrelay_token"
REVEAL_PURPOSE = "dashboard-token-reveal"
REVEAL_SECONDS = 120


class TokenReveal(msgspec.Struct, frozen=True, array_like=True):
    owner_id: str
    integration_id: str
    token: str
    rotated: bool
    expires_at: int


_reveal_decoder = msgspec.json.Decoder(TokenReveal)


class RevealCodec:
    """Carries a new access token across the redirect after create/rotate (POST → 303 → GET), so that
    reloading or going back never re-submits the form, and the token is never in a URL: an encrypted,
    HttpOnly cookie scoped to that one page, valid for two minutes and cleared when the page is shown.
    """

    def __init__(self, secret_key: str, *, clock: Callable[[], float] = time.time) -> None:
        self._box = SecretBox(secret_key, REVEAL_PURPOSE)
        self._clock = clock

    def encode(self, owner_id: str, integration_id: str, token: str, *, rotated: bool) -> str:
        reveal = TokenReveal(owner_id, integration_id, token, rotated, int(self._clock()) + REVEAL_SECONDS)
        return self._box.encrypt(msgspec.json.encode(reveal).decode())

    def decode(self, value: str | None, owner_id: str, integration_id: str) -> TokenReveal | None:
        if not value or len(value) > 4096:
            return None
        try:
            reveal = _reveal_decoder.decode(self._box.decrypt(value))
        except (SecretBoxError, msgspec.DecodeError, UnicodeError):
            return None
        if (
            reveal.expires_at <= self._clock()
            or reveal.owner_id != owner_id
            or reveal.integration_id != integration_id
        ):
            return None
        return reveal
