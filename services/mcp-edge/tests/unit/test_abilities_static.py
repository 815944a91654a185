"""Static abilities and the {{argument}} substitution."""

from __future__ import annotations

from skillrelay_common.schemas.abilities import StaticHandler
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_edge.abilities.static import StaticRunner
from skillrelay_edge.abilities.substitute import substitute_block, substitute_text
from skillrelay_edge.access.credentials import Principal
from skillrelay_edge.calls.context import CallContext

INTEGRATION = IntegrationInfo(id="mcpserver_1", owner_id="user_1", name="n", skillset_id="skillset_1")


def _ctx() -> CallContext:
    return CallContext(
        method="tools/call", name="t", integration=INTEGRATION, principal=Principal("static", "static:v1", 1)
    )


def test_substitution_is_single_pass_and_plain() -> None:
    assert substitute_text("hi {{ name }}!", {"name": "{{name}}"}) == "hi {{name}}!"
    assert substitute_text("{{a}}{{b}}", {"a": 1, "b": {"x": [1]}}) == '1{"x":[1]}'
    assert substitute_text("{{missing}}.", {}) == "."
    assert substitute_text("{{__import__('os')}}", {}) == "{{__import__('os')}}"  # not a name: left alone


def test_blocks_substitute_text_fields_only() -> None:
    image = {"type": "image", "data": "{{x}}", "mimeType": "image/png"}
    assert substitute_block(image, {"x": "y"}) == image
    embedded = {"type": "resource", "resource": {"uri": "a://{{id}}", "text": "{{id}}", "blob": "{{id}}"}}
    assert substitute_block(embedded, {"id": "7"})["resource"] == {
        "uri": "a://7",
        "text": "7",
        "blob": "{{id}}",
    }
    link = {"type": "resource_link", "uri": "file:///{{f}}", "name": "{{f}}"}
    assert substitute_block(link, {"f": "a.txt"}) == {
        "type": "resource_link",
        "uri": "file:///a.txt",
        "name": "a.txt",
    }


async def test_static_runner_returns_every_block_type() -> None:
    handler = StaticHandler(
        content=[
            {"type": "text", "text": "Hello {{who}}"},
            {"type": "image", "data": "AAAA", "mimeType": "image/png"},
            {"type": "audio", "data": "AAAA", "mimeType": "audio/wav"},
            {"type": "resource_link", "uri": "test://x", "name": "x"},
            {"type": "resource", "resource": {"uri": "test://y", "text": "{{who}}"}},
        ],
        is_error=True,
        structured_content={"ok": False},
    )
    result = await StaticRunner().run(_ctx(), handler, {"who": "you"})
    assert result["content"][0]["text"] == "Hello you"
    assert [block["type"] for block in result["content"]] == [
        "text",
        "image",
        "audio",
        "resource_link",
        "resource",
    ]
    assert result["content"][4]["resource"]["text"] == "you"
    assert result["isError"] is True and result["structuredContent"] == {"ok": False}
    assert handler.content[0]["text"] == "Hello {{who}}"  # the definition is not modified
