"""Outbound HTTP to addresses that users choose (client ID metadata documents, the owner's IdP): no
private, loopback or link-local targets unless the operator allows them, no redirects, bounded size
and time."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx

MAX_RESPONSE_BYTES = 64 * 1024
TIMEOUT_SECONDS = 5.0


class UnsafeTarget(ValueError):
    """The URL is not allowed (scheme, or it resolves to a non-public address)."""


class FetchFailed(ValueError):
    """The target answered with an error, too much, or not JSON."""


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_target(url: str, *, allow_private: bool, require_https: bool = False) -> None:
    parts = urlsplit(url)
    allowed_schemes = {"https"} if require_https or not allow_private else {"https", "http"}
    if parts.scheme not in allowed_schemes:
        raise UnsafeTarget(f"only {' or '.join(sorted(allowed_schemes))} URLs are allowed")
    if not parts.hostname or parts.username or parts.password:
        raise UnsafeTarget("the URL has no host or carries credentials")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, parts.port or 443, type=socket.SOCK_STREAM
        )
    except OSError:
        raise UnsafeTarget("the host does not resolve") from None
    if not infos or not all(_is_public(str(info[4][0])) for info in infos):
        raise UnsafeTarget("the host resolves to a private, loopback or link-local address")


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
        await check_target(url, allow_private=self.allow_private, require_https=require_https)
        return await self._send(
            self._client.build_request("GET", url, headers={"Accept": "application/json", **(headers or {})})
        )

    async def post_form(
        self, url: str, form: dict[str, str], *, headers: dict[str, str] | None = None
    ) -> Any:
        await check_target(url, allow_private=self.allow_private)
        request = self._client.build_request(
            "POST", url, data=form, headers={"Accept": "application/json", **(headers or {})}
        )
        return await self._send(request)

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
