"""A prompt's embedded resource URI may be an ``{{argument}}``: what substitution makes of it is checked
at ``prompts/get``."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from skillrelay_common.schemas.abilities import PromptDef
from skillrelay_common.schemas.registry import IntegrationInfo, IntegrationSnapshot
from skillrelay_devstack.edge import demo_skillset
from skillrelay_edge.access.credentials import Principal
from skillrelay_edge.integrations.catalog import Catalog
from skillrelay_edge.protocol.prompts import get_prompt
from skillrelay_edge.protocol.scope import RequestScope, Services
from skillrelay_edge.transport.jsonrpc import RpcError

CITE = msgspec.convert(
    {
        "id": "prompt_cite",
        "name": "cite",
        "arguments": [{"name": "resourceUri", "required": True}],
        "messages": [
            {
                "role": "user",
                "content": {"type": "resource", "resource": {"uri": "{{resourceUri}}", "text": "see it"}},
            },
            {"role": "user", "content": {"type": "resource_link", "uri": "{{resourceUri}}", "name": "it"}},
        ],
    },
    PromptDef,
)


def _scope() -> RequestScope:
    skillset = msgspec.structs.replace(demo_skillset(), prompts=[CITE])
    info = IntegrationInfo(id="mcpserver_p", owner_id="u", name="n", skillset_id=skillset.id)
    catalog = Catalog.build(IntegrationSnapshot(integration=info, skillset=skillset))
    return RequestScope(catalog, Principal("static", "static:v1", 1), None, "2025-11-25")


async def _get(uri: str) -> dict[str, Any]:
    services = Services(sessions=None, runners={})  # type: ignore[arg-type]
    return await get_prompt(_scope(), services, {"name": "cite", "arguments": {"resourceUri": uri}})


async def test_a_placeholder_uri_becomes_the_argument() -> None:
    result = await _get("file:///project/readme.md")
    assert result["messages"][0]["content"]["resource"]["uri"] == "file:///project/readme.md"
    assert result["messages"][1]["content"]["uri"] == "file:///project/readme.md"


@pytest.mark.parametrize("bad", ["not a uri", "readme.md", "http://x/%zz"])
async def test_an_argument_that_makes_no_absolute_uri_is_invalid_params(bad: str) -> None:
    with pytest.raises(RpcError) as refused:
        await _get(bad)
    assert refused.value.code == -32602
    assert "not an absolute URI" in refused.value.message
