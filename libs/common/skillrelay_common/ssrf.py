"""SSRF guard for requests to user-chosen URLs (``http`` abilities, client metadata documents, upstream
IdPs): resolve the target once, refuse non-public addresses, and hand
back the address to connect to (pinned, so a second DNS answer cannot redirect the request)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class TargetRefused(Exception):
    """The URL may not be called (message is safe to show)."""


@dataclass(frozen=True, slots=True)
class PinnedTarget:
    scheme: str
    host: str  # the name from the URL (Host header, TLS SNI and certificate check)
    address: str  # the resolved IP we connect to
    port: int
    path: str  # path + query

    @property
    def connect_url(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{address}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


@dataclass(frozen=True, slots=True)
class TargetUrl:
    scheme: str
    host: str
    port: int
    path: str  # path + query


def parse_target(url: str) -> TargetUrl:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise TargetRefused("only http and https URLs may be called")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("invalid port") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return TargetUrl(parts.scheme, parts.hostname, port, path)


async def resolve_addresses(host: str, port: int) -> list[str]:
    """The system resolver's answer (``/etc/hosts``, search domains, DNS), every address of it."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except OSError:
        raise TargetRefused(f"cannot resolve {host}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise TargetRefused(f"cannot resolve {host}")
    return addresses


def check_addresses(host: str, addresses: list[str], *, allow_private: bool) -> None:
    if not allow_private:
        # Every answer must be public: otherwise a name with one public and one private address
        # could be used to reach the inside.
        for address in addresses:
            if not is_public(address):
                raise TargetRefused(f"{host} resolves to a non-public address")


async def resolve_target(url: str, *, allow_private: bool) -> PinnedTarget:
    target = parse_target(url)
    addresses = await resolve_addresses(target.host, target.port)
    check_addresses(target.host, addresses, allow_private=allow_private)
    return PinnedTarget(target.scheme, target.host, addresses[0], target.port, target.path)
