"""The consent screen and the browser-facing error page: plain HTML, everything escaped, not frameable."""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

from skillrelay_auth.oauth.authorize import ConsentNeeded

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}"
    "button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem}code{word-break:break-all}"
)


def page_headers(form_target: str | None = None) -> dict[str, str]:
    """Security headers of every HTML page: no framing (clickjacking), no scripts, no caching."""
    form_action = "'self'"
    if form_target:
        parts = urlsplit(form_target)
        # The consent POST redirects to the client: browsers check form-action on that redirect too.
        form_action += f" {parts.scheme}://{parts.netloc}" if parts.netloc else f" {parts.scheme}:"
    return {
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


def consent_html(consent: ConsentNeeded) -> str:
    redirect_host = urlsplit(consent.redirect_uri).netloc or consent.redirect_uri
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Allow access?</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body>
<h1>Allow access to {escape(consent.integration_name)}?</h1>
<p>Signed in as <strong>{escape(consent.user)}</strong>.</p>
<p><strong>{escape(consent.client_name)}</strong> wants to use the MCP server
<strong>{escape(consent.integration_name)}</strong> on your behalf
(scope: <code>{escape(consent.scope)}</code>).</p>
<p>Client: <code>{escape(consent.client_id)}</code><br>
It will be sent back to <code>{escape(redirect_host)}</code>.</p>
<form method="post" action="/oauth/consent">
<input type="hidden" name="request_id" value="{escape(consent.request_id)}">
<input type="hidden" name="csrf" value="{escape(consent.csrf)}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</body></html>"""


def error_html(title: str, message: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{_STYLE}</style></head>
<body><h1>{escape(title)}</h1><p>{escape(message)}</p></body></html>"""
