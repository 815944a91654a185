"""How a call for a source handler becomes the upstream's request, and which source an audit record
names (the forwarding itself is tested against a real upstream in tests/e2e/edge/test_mcp_sources.py)."""

from __future__ import annotations

from typing import Any

from skillrelay_common.schemas.abilities import (
    AbilityDef,
    McpSourceHandler,
    ResourceDef,
    SourceDef,
    StaticHandler,
)
from skillrelay_common.schemas.registry import IntegrationInfo, IntegrationSnapshot, SkillsetSnapshot
from skillrelay_edge.abilities.mcp_source import _expand, _upstream_request
from skillrelay_edge.calls.context import CallContext, CallMethod
from skillrelay_edge.integrations.catalog import Catalog

INTEGRATION = IntegrationInfo(id="mcpserver_1", owner_id="user_1", name="n", skillset_id="skillset_1")


class Principal:
    kind = "static"
    id = "token:1"


def context(method: CallMethod, name: str, progress_token: str | None = None) -> CallContext:
    return CallContext(
        method=method,
        name=name,
        integration=INTEGRATION,
        principal=Principal(),
        progress_token=progress_token,
    )


def test_a_prefixed_tool_is_called_by_the_upstreams_own_name_with_the_clients_progress_token() -> None:
    handler = McpSourceHandler(source_id="src_1", name="echo")
    method, params = _upstream_request(context("tools/call", "up_echo", "tok"), handler, {"text": "hi"})
    assert method == "tools/call"
    assert params == {"name": "echo", "arguments": {"text": "hi"}, "_meta": {"progressToken": "tok"}}


def test_a_templated_resource_is_read_at_the_upstreams_uri() -> None:
    handler = McpSourceHandler(source_id="src_1", name="upstream://items/{item_id}")
    _, params = _upstream_request(
        context("resources/read", "upstream://items/7"),
        handler,
        {"uri": "upstream://items/7", "item_id": "7"},
    )
    assert params == {"uri": "upstream://items/7"}
    assert _expand("files://{+path}/{name}", {"path": "a/b", "name": "c"}) == "files://a/b/c"


def test_completion_refs_name_the_upstreams_prompt() -> None:
    handler = McpSourceHandler(source_id="src_1", name="greet")
    arguments: dict[str, Any] = {
        "ref": {"type": "ref/prompt", "name": "up_greet"},
        "argument": {"name": "n", "value": "A"},
    }
    _, params = _upstream_request(context("completion/complete", "up_greet"), handler, arguments)
    assert params == {"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "n", "value": "A"}}


def test_the_catalog_names_the_source_of_a_forwarded_request_for_the_audit_record() -> None:
    source = SourceDef(id="src_1", type="mcp", url="https://upstream.example/mcp")
    skillset = SkillsetSnapshot(
        id="skillset_1",
        name="s",
        abilities=[
            AbilityDef(id="a1", name="up_echo", handler=McpSourceHandler(source_id="src_1", name="echo")),
            AbilityDef(id="a2", name="local", handler=StaticHandler(content=[])),
        ],
        resources=[
            ResourceDef(
                id="r1",
                name="items",
                uri_template="upstream://items/{id}",
                handler=McpSourceHandler(source_id="src_1", name="upstream://items/{id}"),
            )
        ],
        sources=[source],
    )
    catalog = Catalog.build(IntegrationSnapshot(integration=INTEGRATION, skillset=skillset))
    assert catalog.sources == {"src_1": source}
    assert catalog.source_of_request("tools/call", {"name": "up_echo"}) == "src_1"
    assert catalog.source_of_request("resources/read", {"uri": "upstream://items/3"}) == "src_1"
    assert catalog.source_of_request("tools/list", {}) is None
    assert catalog.source_of_request("tools/call", {"name": "missing"}) is None
