"""Outbound HTTP to addresses that users choose (client ID metadata documents, the owner's IdP): no
private, loopback or link-local targets unless the operator allows them, no redirects, bounded size
and time."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from skillrelay_common.ssrf import PinnedTarget, TargetRefused, resolve_target

MAX_RESPONSE_BYTES = 64 * 1024
TIMEOUT_SECONDS = 5.0


class UnsafeTarget(ValueError):
    """The URL is not allowed (scheme, or it resolves to a non-public address)."""


class FetchFailed(ValueError):
    """The target answered with an error, too much, or not JSON."""


async def check_target(url: str, *, allow_private: bool, require_https: bool = False) -> PinnedTarget | None:
    """Refuse a URL we may not call; unless private targets are allowed, resolve it once and return
    the address to connect to (pinned: a second DNS answer cannot point the request elsewhere)."""
    parts = urlsplit(url)
    allowed_schemes = {"https"} if require_https or not allow_private else {"https", "http"}
    if parts.scheme not in allowed_schemes:
        raise UnsafeTarget(f"only {' or '.join(sorted(allowed_schemes))} URLs are allowed")
    if not parts.hostname or parts.username or parts.password:
        raise UnsafeTarget("the URL has no host or carries credentials")
    if allow_private:
        return None  # the operator allows any address: nothing to pin against
    try:
        return await resolve_target(url, allow_private=False)
    except TargetRefused as exc:
        raise UnsafeTarget(str(exc)) from None


class SafeHttp:
    def __init__(self, *, allow_private: bool, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.allow_private = allow_private
        self._client = httpx.AsyncClient(
            timeout=TIMEOUT_SECONDS, follow_redirects=False, transport=transport, trust_env=False
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def get_json(
        self, url: str, *, require_https: bool = False, headers: dict[str, str] | None = None
    ) -> Any:
        target = await check_target(url, allow_private=self.allow_private, require_https=require_https)
        return await self._send(self._request("GET", url, target, headers))

    async def post_form(
        self, url: str, form: dict[str, str], *, headers: dict[str, str] | None = None
    ) -> Any:
        target = await check_target(url, allow_private=self.allow_private)
        return await self._send(self._request("POST", url, target, headers, form))

    def _request(
        self,
        method: str,
        url: str,
        target: PinnedTarget | None,
        headers: dict[str, str] | None,
        form: dict[str, str] | None = None,
    ) -> httpx.Request:
        all_headers = {"Accept": "application/json", **(headers or {})}
        if target is None:
            return self._client.build_request(method, url, data=form, headers=all_headers)
        # Connect to the address we checked; the name still goes in Host, TLS SNI and the certificate check.
        all_headers["Host"] = target.host_header
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        return self._client.build_request(
            method, target.connect_url, data=form, headers=all_headers, extensions=extensions
        )

    async def _send(self, request: httpx.Request) -> Any:
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise FetchFailed(f"request failed: {type(exc).__name__}") from None
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > MAX_RESPONSE_BYTES:
                    raise FetchFailed("response too large")
        finally:
            await response.aclose()
        if response.status_code != 200:
            raise FetchFailed(f"answered HTTP {response.status_code}")
        try:
            return json.loads(body)
        except ValueError:
            raise FetchFailed("answer is not JSON") from None
