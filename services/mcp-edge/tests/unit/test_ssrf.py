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
