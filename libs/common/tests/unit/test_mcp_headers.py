"""The 2026-07-28 header codec and the ``Mcp-Param-*`` headers a tools/call mirrors (SEP-2243)."""

from __future__ import annotations

import pytest

from skillrelay_common.mcp_headers import decode_header_value, encode_header_value, param_headers

SCHEMA = {
    "type": "object",
    "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "limit": {"type": "integer", "x-mcp-header": "Limit"},
        "dry": {"type": "boolean", "x-mcp-header": "Dry-Run"},
        "target": {"type": "object", "properties": {"zone": {"type": "string", "x-mcp-header": "Zone"}}},
        "text": {"type": "string"},
    },
}


@pytest.mark.parametrize(
    "value",
    ["eu-west", "Grüße", " padded ", "tab\there", "line\nbreak", "=?base64?aGk=?=", ""],
)
def test_every_value_survives_the_round_trip(value: str) -> None:
    encoded = encode_header_value(value)
    assert encoded.isascii() and "\n" not in encoded
    assert decode_header_value(encoded) == value


def test_plain_values_travel_as_they_are() -> None:
    assert encode_header_value("eu-west-1") == "eu-west-1"
    assert encode_header_value("Grüße").startswith("=?base64?")
    # A value that merely looks like the sentinel is wrapped, so it is not decoded on arrival.
    assert encode_header_value("=?base64?aGk=?=") != "=?base64?aGk=?="


def test_param_headers_mirror_the_marked_arguments() -> None:
    arguments = {"region": "Köln", "limit": 5, "dry": False, "target": {"zone": "b"}, "text": "x"}
    assert param_headers(SCHEMA, arguments) == {
        "Mcp-Param-Region": encode_header_value("Köln"),
        "Mcp-Param-Limit": "5",
        "Mcp-Param-Dry-Run": "false",
        "Mcp-Param-Zone": "b",
    }
    # Absent, null and non-scalar arguments send no header.
    assert param_headers(SCHEMA, {"region": None, "target": "not an object", "limit": [1]}) == {}
    assert param_headers({"type": "object"}, {"region": "x"}) == {}
