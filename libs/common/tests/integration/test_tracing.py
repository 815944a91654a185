"""Tracing on: one trace from an HTTP request through a NATS request to the handler serving it."""

from collections.abc import Iterator

import httpx
import pytest
from litestar import Litestar, get
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from skillrelay_common import tracing
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.base import NotFound
from skillrelay_common.schemas.registry import ResolveIntegration
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import REGISTRY_INTEGRATION_RESOLVE

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    assert tracing.configure_tracing(
        "test", Settings(otel_enabled=True), processor=SimpleSpanProcessor(spans)
    )
    yield spans
    tracing.disable_tracing()


def test_off_by_default() -> None:
    assert tracing.configure_tracing("test", Settings()) is False
    assert not tracing.enabled()


async def test_trace_crosses_http_and_nats(exporter: InMemorySpanExporter, nats_url: str, bus: Bus) -> None:
    server = await Bus.connect(nats_url, "registry")
    seen_trace_ids: list[str] = []

    async def resolve(_: ResolveIntegration) -> NotFound:
        seen_trace_ids.append(format(trace.get_current_span().get_span_context().trace_id, "032x"))
        return NotFound(what="integration")

    server.serve(REGISTRY_INTEGRATION_RESOLVE, resolve)
    await server.start()

    @get("/resolve")
    async def resolve_route() -> dict[str, str]:
        reply = await bus.request(REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id="x"))
        return {"reply": type(reply).__name__}

    app = Litestar(route_handlers=[resolve_route], middleware=[tracing.tracing_middleware])
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.get(
                "/resolve", headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
            )
        assert response.json() == {"reply": "NotFound"}
    finally:
        await server.close()

    assert seen_trace_ids == [TRACE_ID]
    spans = {span.name: span for span in exporter.get_finished_spans()}
    http_span = spans["GET /resolve"]
    nats_span = spans[f"process {REGISTRY_INTEGRATION_RESOLVE.subject}"]
    assert http_span.kind == SpanKind.SERVER and nats_span.kind == SpanKind.CONSUMER
    assert format(http_span.context.trace_id, "032x") == TRACE_ID
    assert nats_span.context.trace_id == http_span.context.trace_id
    assert nats_span.parent is not None and nats_span.parent.span_id == http_span.context.span_id
    assert http_span.attributes is not None and http_span.attributes["http.response.status_code"] == 200
