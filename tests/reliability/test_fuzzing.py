"""Fuzzing the public surfaces of the running stack: schemathesis over the registry's OpenAPI document
(every operation, a bounded number of generated requests each) and a hypothesis pass of malformed
JSON-RPC at the MCP endpoint. Neither may produce a 5xx."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from skillrelay_devstack.stack import Stack

from .conftest import ACCEPT, VERSION, Owner, rpc_body

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 4
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.generate],
    database=None,
    derandomize=True,  # reproducible runs
)


def test_registry_openapi_has_no_5xx(rstack: Stack) -> None:
    owner = Owner(rstack).create()
    schema = schemathesis.openapi.from_url(f"{rstack.registry_url}/schema/openapi.json")
    failures: list[str] = []
    exercised = 0
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()

            @FUZZ_SETTINGS
            @given(case=operation.as_strategy())
            def run(case: Any) -> None:
                nonlocal exercised
                exercised += 1
                # Real ids of this owner where the path asks for one, so calls go past the 404s.
                for name in list(case.path_parameters or {}):
                    if name == "skillset_id" and exercised % 2:
                        case.path_parameters[name] = owner.skillset_id
                    if name == "integration_id" and exercised % 2:
                        case.path_parameters[name] = owner.integration_id
                response = case.call(
                    base_url=rstack.registry_url, session=session, headers=owner.headers, timeout=20
                )
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code} {response.text[:200]}"
                    )

            run()
    print(f"schemathesis: {exercised} requests")
    assert exercised > 50
    assert not failures, "\n".join(failures[:20])


# --- malformed JSON-RPC at the edge -------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
methods = st.sampled_from(
    [
        "initialize",
        "tools/list",
        "tools/call",
        "resources/read",
        "prompts/get",
        "ping",
        "completion/complete",
        "logging/setLevel",
        "notifications/initialized",
        "notifications/cancelled",
        "nope",
        "",
    ]
)
requests_ = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]) | json_values,
        "id": st.integers() | st.text(max_size=10) | st.none() | json_values,
        "method": methods | json_values,
        "params": json_values
        | st.fixed_dictionaries(
            {}, optional={"name": json_values, "arguments": json_values, "protocolVersion": json_values}
        ),
    },
)
bodies = st.one_of(
    requests_.map(lambda value: json.dumps(value).encode()),
    st.lists(requests_, max_size=3).map(lambda value: json.dumps(value).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
)
header_sets = st.fixed_dictionaries(
    {},
    optional={
        "content-type": st.sampled_from(
            ["application/json", "text/plain", "application/json; charset=utf-8", ""]
        ),
        "accept": st.sampled_from([ACCEPT, "application/json", "text/event-stream", "*/*", ""]),
        "mcp-protocol-version": st.sampled_from([VERSION, "2025-03-26", "1999-01-01", "x"]),
        "mcp-session-id": st.sampled_from(["", "nope", "a" * 40]),
    },
)


def test_malformed_json_rpc_never_gets_a_5xx(rstack: Stack) -> None:
    owner = Owner(rstack).create()
    failures: list[str] = []
    sent = 0
    with httpx.Client(timeout=20) as http:

        @settings(
            max_examples=150,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
            phases=[Phase.generate],
        )
        @given(
            body=bodies,
            headers=header_sets,
            replica=st.sampled_from([0, 1]),
            method=st.sampled_from(["POST", "POST", "POST", "GET", "DELETE"]),
        )
        def run(body: bytes, headers: dict[str, str], replica: int, method: str) -> None:
            nonlocal sent
            sent += 1
            sent_headers = {"authorization": f"Bearer {owner.token}", **headers}
            with http.stream(
                method,
                owner.endpoint(replica),
                content=body if method == "POST" else None,
                headers=sent_headers,
            ) as response:
                # A GET may open an SSE stream: the status line is what matters here.
                if response.status_code >= 500:
                    failures.append(f"{method} {body[:80]!r} {headers} -> {response.status_code}")

        run()
    print(f"json-rpc fuzz: {sent} requests")
    assert sent >= 100
    assert not failures, "\n".join(failures[:20])


# --- hostile shapes found by hand (each answered 5xx once) -------------------------------------------


def test_hostile_shapes_never_get_a_5xx(rstack: Stack) -> None:
    """Bodies and headers built to break decoders and stores, at every public surface: each gets a
    clear 4xx (or a JSON-RPC error), never a 5xx."""
    owner = Owner(rstack).create()
    edge, registry = owner.endpoint(0), rstack.registry_url
    deep = b"[" * 100_000 + b"]" * 100_000
    not_utf8 = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"\xff\xfe"}}'
    rpc = {"accept": ACCEPT, "content-type": "application/json", "authorization": f"Bearer {owner.token}"}
    json_headers = {**owner.headers, "content-type": "application/json"}
    failures: list[str] = []

    def check(label: str, response: httpx.Response, expected_rpc_code: int | None = None) -> None:
        """A 4xx, or (for JSON-RPC errors the edge answers with 200) the expected error code."""
        status = response.status_code
        if status >= 500 or (expected_rpc_code is None and not 400 <= status < 500):
            failures.append(f"{label}: {status} {response.text[:160]}")
        elif expected_rpc_code is not None:
            code = rpc_body(response).get("error", {}).get("code")
            if code != expected_rpc_code:
                failures.append(f"{label}: JSON-RPC code {code}, expected {expected_rpc_code}")

    with httpx.Client(timeout=30) as http:
        init = {"jsonrpc": "2.0", "id": 0, "method": "initialize"}
        init["params"] = {
            "protocolVersion": VERSION,
            "capabilities": {},
            "clientInfo": {"name": "f", "version": "1"},
        }
        session = http.post(edge, headers=rpc, json=init).headers["mcp-session-id"]
        in_session = {**rpc, "mcp-session-id": session, "mcp-protocol-version": VERSION}

        check("edge: 100,000 nested arrays", http.post(edge, headers=in_session, content=deep), -32700)
        check("edge: invalid UTF-8", http.post(edge, headers=in_session, content=not_utf8), -32700)
        huge = {
            **init,
            "params": {**init["params"], "capabilities": {"experimental": {"x": "y" * 3_000_000}}},
        }
        check("edge: 3 MB capabilities", http.post(edge, headers=rpc, json=huge), -32602)
        subscribe = {"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe"}
        long_uri = {**subscribe, "params": {"uri": "x://" + "u" * 70_000}}
        check("edge: 70 KB subscription URI", http.post(edge, headers=in_session, json=long_uri), -32602)
        last = None
        for index in range(101):
            many = {**subscribe, "params": {"uri": f"x://item/{index}"}}
            last = http.post(edge, headers=in_session, json=many)
        assert last is not None
        check("edge: one subscription too many", last, -32602)
        batch = [{"jsonrpc": "2.0", "id": 3, "method": "ping"}]
        old_header = {**in_session, "mcp-protocol-version": "2025-03-26"}
        check("edge: batch in a later session", http.post(edge, headers=old_header, json=batch), -32600)
        doubled = [*[(k, v) for k, v in rpc.items() if k != "authorization"]]
        doubled += [("authorization", f"Bearer {owner.token}"), ("authorization", "Bearer x")]
        check("edge: two Authorization headers", http.post(edge, headers=doubled, json=batch[0]))

        create = f"{registry}/api/v1/skillset/create"
        check("registry: 100,000 nested arrays", http.post(create, headers=json_headers, content=deep))
        check("registry: invalid UTF-8", http.post(create, headers=json_headers, content=b'{"name":"\xff"}'))
        check("registry: NUL in a name", http.post(create, headers=owner.headers, json={"name": "a\x00b"}))
        two = [("content-type", "application/json"), ("authorization", owner.headers["authorization"])]
        two.append(("authorization", "Bearer other"))
        check("registry: two Authorization headers", http.post(create, headers=two, json={"name": "x"}))

        connection = http.post(
            f"{registry}/api/v1/oauth/connection/create",
            headers=owner.headers,
            json={
                "name": "idp",
                "clientId": "c",
                "clientSecret": "s",
                "scopes": ["openid"],
                "authorizationUrl": "https://idp.example/authorize",
                "tokenUrl": "https://idp.example/token",
            },
        ).json()["id"]
        gated = http.post(
            f"{registry}/api/v1/integration/mcpserver/create",
            headers=owner.headers,
            json={"name": "gated", "skillsetId": owner.skillset_id, "oAuthConnectionId": connection},
        ).json()["id"]
        register = f"{rstack.auth_url}/oauth/{gated}/register"
        named = {"redirect_uris": ["http://127.0.0.1:1/cb"], "client_name": "a\x00b"}
        check("auth: NUL in client_name", http.post(register, json=named))
        check(
            "auth: invalid UTF-8",
            http.post(register, content=not_utf8, headers={"content-type": "application/json"}),
        )
        check(
            "auth: 100,000 nested arrays",
            http.post(register, content=deep, headers={"content-type": "application/json"}),
        )
    assert not failures, "\n".join(failures)
