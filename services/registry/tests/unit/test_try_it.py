"""The Try-it panel's pure parts: forms from schemas, values back to arguments, answers shown; and its
MCP client against a scripted edge (the real edge is driven in tests/e2e/test_owner_view_browser.py)."""

from __future__ import annotations

import json

import httpx

from skillrelay_registry.dashboard.try_client import try_request
from skillrelay_registry.dashboard.try_form import Target, prompt_inputs, read_arguments, schema_inputs
from skillrelay_registry.dashboard.views_try import shown_blocks

SCHEMA = {
    "type": "object",
    "properties": {
        "tags": {"type": "array", "items": {"type": "string"}},
        "count": {"type": "integer", "default": 3},
        "ratio": {"type": "number"},
        "loud": {"type": "boolean"},
        "mood": {"type": "string", "enum": ["calm", "cheerful"]},
        "name": {"type": "string", "description": "who"},
    },
    "required": ["name"],
}


def test_inputs_fit_each_property_and_required_ones_come_first() -> None:
    inputs = schema_inputs(SCHEMA)
    assert [(i.name, i.kind) for i in inputs] == [
        ("name", "text"),
        ("tags", "json"),
        ("count", "integer"),
        ("ratio", "number"),
        ("loud", "boolean"),
        ("mood", "select"),
    ]
    assert inputs[0].required and inputs[0].hint == "who"
    assert inputs[2].default == "3" and inputs[5].choices == ("calm", "cheerful")
    assert schema_inputs({"type": "object"}) == []
    assert [i.name for i in prompt_inputs([{"name": "topic", "required": True}, {"x": 1}])] == ["topic"]


def test_posted_values_become_typed_arguments_or_problems() -> None:
    inputs = schema_inputs(SCHEMA)
    form = {
        "arg.name": " Ada ",
        "arg.tags": '["a"]',
        "arg.count": "7",
        "arg.ratio": "0.5",
        "arg.loud": "true",
    }
    assert read_arguments(inputs, form) == (
        {"name": "Ada", "tags": ["a"], "count": 7, "ratio": 0.5, "loud": True},
        {},
    )
    arguments, problems = read_arguments(inputs, {"arg.count": "seven", "arg.tags": "[", "arg.mood": ""})
    assert arguments == {} and set(problems) == {"arg.count", "arg.tags"}
    assert problems["arg.count"] == "not a whole number" and problems["arg.tags"].startswith("not valid JSON")


def test_targets_parse_and_answers_are_shown_in_order() -> None:
    assert Target.parse("resource:docs://a/b") == Target("resource", "docs://a/b")
    assert Target.parse("nothing") is None and Target.parse("tool:") is None
    shown = shown_blocks(
        {
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "image", "mimeType": "image/png", "data": "AAA="},
            ],
            "structuredContent": {"n": 1},
        }
    )
    assert [(b.kind, b.text) for b in shown] == [
        ("text", "hi"),
        ("image", "data:image/png;base64,AAA="),
        ("json", '{\n  "n": 1\n}'),
    ]
    prompt = shown_blocks(
        {
            "messages": [
                {"role": "user", "content": {"type": "resource", "resource": {"uri": "x:y", "text": "t"}}}
            ]
        }
    )
    assert [(b.kind, b.text, b.label) for b in prompt] == [("text", "t", "user x:y")]


def _edge(answer: httpx.Response, seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "DELETE":
            return httpx.Response(200)
        body = json.loads(request.content)
        if body["method"] == "initialize":
            return httpx.Response(
                200, json={"jsonrpc": "2.0", "id": 1, "result": {}}, headers={"Mcp-Session-Id": "s1"}
            )
        if body["method"] == "notifications/initialized":
            return httpx.Response(202)
        return answer

    return httpx.MockTransport(handle)


async def test_the_client_opens_asks_reads_an_sse_answer_and_ends_the_session() -> None:
    seen: list[httpx.Request] = []
    stream = (
        'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\n'
        "event: message\n"
        'data: {"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"ok"}]}}\n\n'
    )
    answer = httpx.Response(200, text=stream, headers={"content-type": "text/event-stream"})
    outcome = await try_request(
        "http://edge/mcp", "tok", "tools/call", {"name": "t"}, transport=_edge(answer, seen)
    )
    assert outcome.result == {"content": [{"type": "text", "text": "ok"}]} and outcome.problem is None
    assert [r.method for r in seen] == ["POST", "POST", "POST", "DELETE"]
    assert all(r.headers["authorization"] == "Bearer tok" for r in seen)
    assert (
        seen[2].headers["mcp-session-id"] == "s1" and seen[2].headers["mcp-protocol-version"] == "2025-11-25"
    )


async def test_a_refused_token_or_an_unreachable_edge_is_a_problem_not_an_exception() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        error = {"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": "Unauthorized: no"}}
        return httpx.Response(401, json=error)

    refused = await try_request("http://edge/mcp", "bad", "ping", {}, transport=httpx.MockTransport(refuse))
    assert (refused.http_status, refused.problem) == (401, "Unauthorized: no")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    gone = await try_request("http://edge/mcp", "t", "ping", {}, transport=httpx.MockTransport(down))
    assert gone.problem == "the edge could not be reached (ConnectError)"
