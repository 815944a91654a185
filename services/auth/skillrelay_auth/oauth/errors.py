"""OAuth errors are Authlib's ``OAuth2Error``: one shape for the JSON endpoints (RFC 6749 section 5.2),
the error redirects to a verified redirect URI, and the browser pages. A few codes Authlib has no class
for are added here."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error

from skillrelay_auth.oauth.policy import error_text


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707: the resource is not this integration's MCP endpoint."""

    error = "invalid_target"


class LoginRequiredError(OAuth2Error):  # type: ignore[misc]
    """``prompt=none``, but the user must log in at the identity provider."""

    error = "login_required"


def oauth_error(error: str, description: str, status: int = 400) -> OAuth2Error:
    return OAuth2Error(error_text(description), status_code=status, error=error)


def not_found() -> OAuth2Error:
    return oauth_error("not_found", "no OAuth authorization server for this integration", 404)


def registry_unavailable() -> OAuth2Error:
    return oauth_error("temporarily_unavailable", "the registry is not answering; try again", 503)
