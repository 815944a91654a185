"""Outbound requests to user-chosen URLs refuse private, loopback and link-local targets."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from skillrelay_auth.oauth.policy import valid_metadata_document_url, valid_redirect_uri
from skillrelay_auth.safe_http import SafeHttp, UnsafeTarget, check_target


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/client.json",
        "https://localhost/client.json",
        "https://10.1.2.3/x",
        "https://192.168.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://0.0.0.0/x",
        "http://example.com/x",
        "file:///etc/passwd",
        "https://user:pw@example.com/x",
    ],
)
async def test_refused_targets(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        await check_target(url, allow_private=False)


async def test_operator_may_allow_private_targets_but_metadata_documents_stay_https() -> None:
    await check_target("http://127.0.0.1:9/x", allow_private=True)
    with pytest.raises(UnsafeTarget):
        await check_target("http://127.0.0.1:9/x", allow_private=True, require_https=True)


async def test_the_checked_address_is_the_one_connected_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name is resolved once, checked, and the request goes to that address (the
    name stays in Host and TLS SNI), so a second, private answer cannot redirect it."""
    answers = iter(["93.184.216.34", "127.0.0.1"])  # a rebinding resolver: public, then loopback

    async def resolve(host: str, port: int, **_: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolve)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"client_id": "x"})

    http = SafeHttp(allow_private=False, transport=httpx.MockTransport(answer))
    try:
        assert await http.get_json("https://client.example/c.json") == {"client_id": "x"}
    finally:
        await http.close()
    [request] = seen
    assert request.url.host == "93.184.216.34" and request.url.path == "/c.json"
    assert request.headers["host"] == "client.example"
    assert request.extensions["sni_hostname"] == "client.example"


def test_redirect_and_client_id_url_rules() -> None:
    assert valid_redirect_uri("https://app.example/cb")
    assert valid_redirect_uri("http://127.0.0.1:3000/cb")
    assert valid_redirect_uri("http://localhost/cb")
    assert valid_redirect_uri("com.example.app:/oauth")
    assert not valid_redirect_uri("http://app.example/cb")
    assert not valid_redirect_uri("https://app.example/cb#x")
    assert not valid_redirect_uri("javascript:alert(1)")
    assert valid_metadata_document_url("https://client.example/oauth/client.json")
    assert not valid_metadata_document_url("https://client.example/")
    assert not valid_metadata_document_url("http://client.example/c.json")
    assert not valid_metadata_document_url("https://client.example/a/../c.json")
