"""Transport rules and JSON-RPC framing, without a server."""

from __future__ import annotations

import pytest

from skillrelay_edge.transport import jsonrpc
from skillrelay_edge.transport.jsonrpc import FramingError
from skillrelay_edge.transport.rules import HttpRules, negotiate_version

RULES = HttpRules("https://mcp.example.com", "0.0.0.0", 1000)
BOTH = "application/json, text/event-stream"


@pytest.mark.parametrize(
    ("host", "origin", "status"),
    [
        ("mcp.example.com", None, None),
        ("localhost:8080", None, None),
        ("127.0.0.1:9", "http://localhost:3000", None),
        ("[::1]:8080", None, None),
        ("mcp.example.com", "https://mcp.example.com", None),
        ("evil.example.com", None, 403),
        ("evil.example.com:80", "http://evil.example.com", 403),
        ("localhost:8080", "http://evil.example.com", 403),
        ("localhost:8080", "null", 403),
        ("mcp.example.com", "http://mcp.example.com", 403),  # wrong scheme: not the public origin
    ],
)
def test_host_and_origin(host: str, origin: str | None, status: int | None) -> None:
    rejection = RULES.check_host_and_origin(host, origin)
    assert (rejection.status if rejection else None) == status
    assert RULES.check_host_and_origin(host, origin) == rejection  # cached verdict is the same


@pytest.mark.parametrize(
    ("content_type", "accept", "length", "status"),
    [
        ("application/json", BOTH, "10", None),
        ("application/json; charset=utf-8", "*/*", None, None),
        ("application/json", "application/json, text/*", None, None),
        ("application/json", "application/json", None, 406),
        ("application/json", "text/event-stream", None, 406),
        ("application/json", None, None, 406),
        ("text/plain", BOTH, None, 415),
        (None, BOTH, None, 415),
        ("application/json", BOTH, "1001", 413),
        ("application/json", BOTH, "x", 400),
    ],
)
def test_post_headers(
    content_type: str | None, accept: str | None, length: str | None, status: int | None
) -> None:
    rejection = RULES.check_post_headers(content_type, accept, length)
    assert (rejection.status if rejection else None) == status


def test_protocol_version_header_and_negotiation() -> None:
    assert RULES.check_protocol_version(None) is None
    for version in ("2025-11-25", "2025-06-18", "2025-03-26"):
        assert RULES.check_protocol_version(version) is None
        assert negotiate_version(version) == version
    rejection = RULES.check_protocol_version("2024-11-05")
    assert rejection is not None and rejection.status == 400
    assert negotiate_version("2099-01-01") == "2025-11-25"
    assert negotiate_version(None) == "2025-11-25"
    assert RULES.check_get_headers("text/event-stream") is None
    assert RULES.check_get_headers("application/json") is not None


def test_framing_classifies_messages() -> None:
    messages, batch = jsonrpc.decode_body(b'{"jsonrpc":"2.0","id":1,"method":"ping"}')
    assert (messages[0].kind, messages[0].id, batch) == ("request", 1, False)
    messages, batch = jsonrpc.decode_body(
        b'[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"a","result":{}}]'
    )
    assert [m.kind for m in messages] == ["notification", "response"] and batch


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", -32700),
        (b"[]", -32600),
        (b'{"id":1,"method":"ping"}', -32600),
        (b'{"jsonrpc":"2.0","id":null,"method":"ping"}', -32600),
        (b'{"jsonrpc":"2.0","id":true,"method":"ping"}', -32600),
        (b'{"jsonrpc":"2.0","id":1,"method":5}', -32600),
        (b'{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}', -32600),
        (b'{"jsonrpc":"2.0","id":1}', -32600),
    ],
)
def test_framing_errors(body: bytes, code: int) -> None:
    with pytest.raises(FramingError) as caught:
        jsonrpc.decode_body(body)
    assert caught.value.code == code
