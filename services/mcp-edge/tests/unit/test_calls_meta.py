"""The request's ``_meta`` reaches the call context without its progress token."""

from __future__ import annotations

from typing import Any

from skillrelay_common.schemas.registry import IntegrationInfo, IntegrationSnapshot
from skillrelay_devstack.edge import demo_skillset
from skillrelay_edge.access.credentials import Principal
from skillrelay_edge.integrations.catalog import Catalog
from skillrelay_edge.protocol.calls import make_context
from skillrelay_edge.protocol.scope import RequestScope


def _scope() -> RequestScope:
    skillset = demo_skillset()
    info = IntegrationInfo(id="mcpserver_m", owner_id="u", name="n", skillset_id=skillset.id)
    catalog = Catalog.build(IntegrationSnapshot(integration=info, skillset=skillset))
    return RequestScope(catalog, Principal("static", "static:v1", 1), None, "2025-11-25", request_id=1)


def test_meta_without_the_progress_token() -> None:
    params: dict[str, Any] = {"name": "echo", "_meta": {"progressToken": 5, "traceparent": "00-a-b-01"}}
    ctx = make_context(_scope(), "tools/call", "echo", None, params)
    assert ctx.progress_token == 5
    assert ctx.meta == {"traceparent": "00-a-b-01"}
    assert make_context(_scope(), "tools/call", "echo", None, {"_meta": "junk"}).meta == {}
