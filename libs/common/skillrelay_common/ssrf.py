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


_NAT64_PREFIXES = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and a router or relay would deliver to: mapped and
    compatible (``::ffff:a.b.c.d``, ``::a.b.c.d``), 6to4 (``2002::/16``), Teredo (``2001::/32``: server
    and client) and NAT64 (``64:ff9b::/96``, ``64:ff9b:1::/48``, the IPv4 in the last 32 bits)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _IPV4_COMPATIBLE or any(ip in prefix for prefix in _NAT64_PREFIXES):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _is_public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def is_public(address: str) -> bool:
    """Public, and so is every IPv4 address it embeds (whatever Python's own tables say of the
    IPv6 prefix: 6to4 counts as global there, yet ``2002:7f00:1::`` reaches 127.0.0.1 via a relay)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # the socket layer connects to the IPv4 address itself
            return _is_public_ip(ip.ipv4_mapped)
        if not all(_is_public_ip(inner) for inner in embedded_ipv4(ip)):
            return False
    return _is_public_ip(ip)


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
