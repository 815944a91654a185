"""An ability's handler edited with a form per kind: the inputs become the REST API's handler JSON and
a stored handler comes back as the inputs of its kind (or raw JSON when no form shows all of it)."""

from __future__ import annotations

import json

import pytest

from skillrelay_registry.dashboard import handler_form as hf


def test_each_kinds_inputs_become_its_handler() -> None:
    static = hf.with_handler(
        {hf.KIND: "static", hf.TEXT: "Hello, {{name}}!", hf.IS_ERROR: "true", "name": "x"}
    )
    assert json.loads(static["handler"]) == {
        "type": "static",
        "content": [{"type": "text", "text": "Hello, {{name}}!"}],
        "isError": True,
    }
    assert static["name"] == "x"
    http = hf.with_handler(
        {
            hf.KIND: "http",
            hf.METHOD: "GET",
            hf.URL: " https://api.example/x ",
            hf.HEADERS: "X-A: 1\n\nX-B:two",
        }
    )
    assert json.loads(http["handler"]) == {
        "type": "http",
        "method": "GET",
        "url": "https://api.example/x",
        "headers": {"X-A": "1", "X-B": "two"},
    }
    worker = hf.with_handler({hf.KIND: "worker", hf.SUBJECT: "greeter", hf.WORKER_TIMEOUT: "5000"})
    assert json.loads(worker["handler"]) == {"type": "worker", "subject": "greeter", "timeoutMs": 5000}
    raw = {hf.KIND: "json", "handler": '{"type": "static", "content": []}'}
    assert hf.with_handler(raw) == raw
    assert hf.with_handler({"handler": "{}"}) == {"handler": "{}"}  # a form without the kind choice


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({hf.KIND: "http", hf.URL: "https://x", hf.HEADERS: "no colon here"}, hf.HEADERS),
        ({hf.KIND: "http", hf.URL: "https://x", hf.TIMEOUT: "soon"}, hf.TIMEOUT),
        ({hf.KIND: "worker", hf.SUBJECT: "s", hf.WORKER_TIMEOUT: "-1"}, hf.WORKER_TIMEOUT),
    ],
)
def test_unreadable_inputs_name_their_field(form: dict[str, str], field: str) -> None:
    with pytest.raises(hf.HandlerFormError) as problem:
        hf.with_handler(form)
    assert problem.value.field == field


def test_stored_handlers_come_back_as_their_kinds_inputs_or_raw_json() -> None:
    assert hf.handler_values({"type": "static", "content": [{"type": "text", "text": "hi"}]}) == {
        hf.KIND: "static",
        hf.TEXT: "hi",
    }
    http = hf.handler_values(
        {"type": "http", "method": "PUT", "url": "https://x", "headers": {"A": "1"}, "timeoutMs": 300}
    )
    assert http == {
        hf.KIND: "http",
        hf.METHOD: "PUT",
        hf.URL: "https://x",
        hf.HEADERS: "A: 1",
        hf.TIMEOUT: "300",
    }
    assert hf.handler_values({"type": "worker", "subject": "w"})[hf.SUBJECT] == "w"
    two_blocks = {"type": "static", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    assert hf.handler_values(two_blocks) == {hf.KIND: "json"}
    structured = {"type": "static", "content": [{"type": "text", "text": "a"}], "structuredContent": {}}
    assert hf.handler_values(structured) == {hf.KIND: "json"}
    assert hf.handler_values(None) == {hf.KIND: "json"}
