"""The SSRF guard of http abilities (no network: literal addresses and localhost only)."""

from __future__ import annotations

import pytest

from skillrelay_common.ssrf import TargetRefused, is_public, resolve_target


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("100.64.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("240.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        # IPv4 carried inside IPv6: 6to4, Teredo, NAT64, IPv4-compatible and -translated forms.
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:c0a8:101::1", False),  # 6to4 of 192.168.1.1
        ("2002:a9fe:a9fe::", False),  # 6to4 of 169.254.169.254
        ("2002:a00:1::", False),  # 6to4 of 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:80ff:fefe", False),  # Teredo, client 127.0.0.1
        ("2001:0:7f00:1:8000:63bf:f7f7:f7f7", False),  # Teredo, server 127.0.0.1
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b:1::c0a8:101", False),  # local-use NAT64 of 192.168.1.1
        ("::127.0.0.1", False),  # IPv4-compatible
        ("::ffff:0:7f00:1", False),  # IPv4-translated
        ("::ffff:a9fe:a9fe", False),  # IPv4-mapped, hex form
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(address) is public


async def test_private_targets_are_refused_after_resolution() -> None:
    for url in (
        "http://localhost:8080/x",
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://169.254.169.254/latest",
    ):
        with pytest.raises(TargetRefused):
            await resolve_target(url, allow_private=False)


async def test_only_http_urls() -> None:
    for url in ("file:///etc/passwd", "gopher://x", "http:///nohost"):
        with pytest.raises(TargetRefused):
            await resolve_target(url, allow_private=True)


async def test_the_resolved_address_is_pinned() -> None:
    target = await resolve_target("http://localhost:8080/path?q=1", allow_private=True)
    assert target.address in {"127.0.0.1", "::1"}
    assert target.host_header == "localhost:8080"
    assert target.connect_url.endswith(":8080/path?q=1")
    assert "localhost" not in target.connect_url
