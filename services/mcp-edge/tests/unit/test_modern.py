"""The stateless era's pure parts: header values, ``_meta`` rules, the sealed ``requestState``."""

from __future__ import annotations

import base64

import pytest

from skillrelay_common.mcp_headers import decode_header_value, header_params
from skillrelay_edge.modern.headers import check_param_headers, check_standard_headers
from skillrelay_edge.modern.inputs import ResumePoint, input_key, read_input_responses
from skillrelay_edge.modern.meta import ModernError, check_version, read_meta
from skillrelay_edge.modern.request_state import RequestStateCodec, request_digest
from skillrelay_edge.transport.jsonrpc import RpcError

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
}


def test_header_values_are_trimmed_and_base64_decoded() -> None:
    assert decode_header_value("  get_weather\t") == "get_weather"
    encoded = base64.b64encode("Hello, 世界".encode()).decode()
    assert decode_header_value(f"=?base64?{encoded}?=") == "Hello, 世界"
    for bad in ("=?base64?%%%?=", "=?base64?SGVsbG8?=", "caf\u00e9"):
        with pytest.raises(ValueError):
            decode_header_value(bad)


def test_standard_headers_mirror_the_body() -> None:
    params = {"name": "t", "arguments": {}}
    check_standard_headers({"mcp-method": "tools/call", "mcp-name": "t"}, "tools/call", params)
    check_standard_headers({"mcp-method": "tools/list"}, "tools/list", {})
    for headers in ({}, {"mcp-method": "tools/call"}, {"mcp-method": "tools/call", "mcp-name": "u"}):
        with pytest.raises(ModernError) as refused:
            check_standard_headers(headers, "tools/call", params)
        assert (refused.value.code, refused.value.status) == (-32020, 400)


def test_meta_and_version_rules() -> None:
    meta = read_meta({"_meta": {**META, "io.modelcontextprotocol/logLevel": "info"}})
    assert (meta.protocol_version, meta.log_level, meta.client_info) == ("2026-07-28", "info", None)
    check_version("2026-07-28", meta, ("2026-07-28",))
    with pytest.raises(ModernError) as bad_level:
        read_meta({"_meta": {**META, "io.modelcontextprotocol/logLevel": "loud"}})
    assert bad_level.value.code == -32602
    with pytest.raises(ModernError) as mismatch:
        check_version("2025-11-25", meta, ("2026-07-28",))
    assert mismatch.value.code == -32020
    old = read_meta({"_meta": {**META, "io.modelcontextprotocol/protocolVersion": "2020-01-01"}})
    with pytest.raises(ModernError) as unsupported:
        check_version("2020-01-01", old, ("2026-07-28", "2025-11-25"))
    assert unsupported.value.code == -32022
    assert unsupported.value.data == {"supported": ["2026-07-28", "2025-11-25"], "requested": "2020-01-01"}


def test_input_responses_must_be_a_map_of_objects() -> None:
    assert read_input_responses({}) == {}
    assert read_input_responses({"inputResponses": {"a": {"action": "accept"}}}) == {
        "a": {"action": "accept"}
    }
    for bad in (None, [], {"a": 1}):
        with pytest.raises(RpcError) as refused:
            read_input_responses({"inputResponses": bad})
        assert refused.value.code == -32602
    assert input_key("elicitation/create", 3) == "elicit-3"
    assert input_key("elicitation/create", 3, "user_name") == "user_name"


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_request_state_is_sealed_and_bound() -> None:
    clock = Clock()
    codec = RequestStateCodec("a-secret-key", clock=clock)
    bound = {
        "integration_id": "mcpserver_a",
        "principal": "static:v1",
        "method": "tools/call",
        "name": "ask",
        "digest": request_digest({"b": 1, "a": 2}),
    }
    token = codec.seal(**bound, resume=ResumePoint("call1", 4, 1060.0))
    assert "call1" not in token  # encrypted, not only signed
    assert codec.open(token, **bound) == ResumePoint("call1", 4, 1060.0)
    assert request_digest({"a": 2, "b": 1}) == bound["digest"]
    # Another replica with the same service secret opens it.
    assert RequestStateCodec("a-secret-key", clock=clock).open(token, **bound).call_id == "call1"
    refusals = [
        (token + "-TAMPERED", bound),
        (RequestStateCodec("another-key").seal(**bound, resume=ResumePoint("c", 1, 2000.0)), bound),
        (token, {**bound, "principal": "oauth:someone"}),
        (token, {**bound, "integration_id": "mcpserver_b"}),
        (token, {**bound, "name": "other"}),
        (token, {**bound, "digest": request_digest({"a": 3})}),
        (42, bound),
    ]
    for presented, against in refusals:
        with pytest.raises(RpcError) as refused:
            codec.open(presented, **against)
        assert refused.value.code == -32602
    clock.now = 1061.0
    with pytest.raises(RpcError) as expired:
        codec.open(token, **bound)
    assert "expired" in expired.value.message


def test_param_headers_mirror_the_annotated_arguments() -> None:
    schema = {
        "type": "object",
        "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "limit": {"type": "integer", "x-mcp-header": "Limit"},
            "options": {"type": "object", "properties": {"dry": {"type": "boolean", "x-mcp-header": "Dry"}}},
            "query": {"type": "string"},
        },
    }
    assert header_params(schema) == [
        (("region",), "Region"),
        (("limit",), "Limit"),
        (("options", "dry"), "Dry"),
    ]
    arguments = {"region": "us-west1", "limit": 42, "options": {"dry": True}, "query": "x"}
    good = {"mcp-param-region": "us-west1", "mcp-param-limit": "42.0", "mcp-param-dry": "true"}
    check_param_headers(good, schema, arguments)
    encoded = "=?base64?" + base64.b64encode("Grüße".encode()).decode() + "?="
    check_param_headers({"mcp-param-region": encoded}, schema, {"region": "Grüße"})
    check_param_headers({}, schema, {"query": "no annotated argument given: no header expected"})
    for bad in (
        {**good, "mcp-param-region": "eu-west1"},
        {k: v for k, v in good.items() if k != "mcp-param-limit"},
        {**good, "mcp-param-dry": "True"},
        {**good, "mcp-param-region": "=?base64?!!?="},
    ):
        with pytest.raises(ModernError) as refused:
            check_param_headers(bad, schema, arguments)
        assert (refused.value.code, refused.value.status) == (-32020, 400)
