"""``GET /api/v1/integration/mcpserver/{id}/usage``: calls per tool, error rate and latency of an MCP
server over the last hour or day (the same figures as the dashboard's charts)."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from skillrelay_registry.api.common import OwnerId, Service
from skillrelay_registry.usage.feed import UsageFeed
from skillrelay_registry.usage.report import UsageOut, usage_out

Usage = NamedDependency[UsageFeed]


def provide_usage(state: State) -> UsageFeed:
    feed = state.get("usage")
    if not isinstance(feed, UsageFeed):
        raise RuntimeError("the usage feed is not started")
    return feed


async def usage_of(
    service: Service, owner_id: str, usage: UsageFeed, integration_id: str, window: Literal["1h", "1d"]
) -> UsageOut:
    await service.get_integration(owner_id, integration_id)  # 404 unless it is the owner's
    report = usage.book.report(integration_id, window, usage.now())
    return usage_out(integration_id, report, complete=usage.caught_up)


@get(
    "/integration/mcpserver/{integration_id:str}/usage",
    summary="Calls per tool, error rate and latency (p50/p95) of an integration",
    description="From the integration's audit records: every MCP request (tool calls by tool), errors "
    "(JSON-RPC errors and tool results with isError), latency percentiles read from a histogram (within "
    "20 %), and requests refused for their credentials. window=1h gives one-minute bins, 1d fifteen-minute "
    "bins. complete is false while this registry replica is still reading the last day of the audit stream.",
    tags=["mcp server integrations"],
)
async def integration_usage(
    service: Service,
    owner_id: OwnerId,
    usage: Usage,
    integration_id: FromPath[str],
    window: Annotated[Literal["1h", "1d"], QueryParameter(description="1h or 1d")] = "1h",
) -> UsageOut:
    return await usage_of(service, owner_id, usage, integration_id, window)
