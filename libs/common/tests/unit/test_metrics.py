"""/metrics and the HTTP middleware on a small Litestar app (in memory, no sockets)."""

import httpx
from litestar import Litestar, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from prometheus_client import REGISTRY

from skillrelay_common import metrics


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _app() -> Litestar:
    @get("/things/{thing_id:str}", sync_to_thread=False)
    def thing(thing_id: FromPath[str]) -> dict[str, str]:
        if thing_id == "missing":
            raise NotFoundException("no such thing")
        return {"id": thing_id}

    return Litestar(
        route_handlers=[thing, *metrics.metrics_routes()], middleware=[metrics.metrics_middleware]
    )


async def test_requests_are_counted_by_route_template_and_outcome() -> None:
    labels = {"method": "GET", "route": "/things/{thing_id}"}
    ok_before = _value("skillrelay_http_requests_total", **labels, outcome="2xx")
    missing_before = _value("skillrelay_http_requests_total", **labels, outcome="4xx")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t") as client:
        assert (await client.get("/things/a")).status_code == 200
        assert (await client.get("/things/b")).status_code == 200
        assert (await client.get("/things/missing")).status_code == 404
        exposition = await client.get("/metrics")
    assert _value("skillrelay_http_requests_total", **labels, outcome="2xx") - ok_before == 2
    assert _value("skillrelay_http_requests_total", **labels, outcome="4xx") - missing_before == 1
    assert exposition.status_code == 200
    assert exposition.headers["content-type"].startswith("text/plain")
    text = exposition.text
    assert (
        'skillrelay_http_request_seconds_bucket{le="0.001",method="GET",outcome="2xx",route="/things/{thing_id}"}'
        in text
    )
    assert "skillrelay_audit_dropped_total" in text
    assert 'route="/metrics"' not in text  # scrapes do not count themselves


def test_owner_gauges() -> None:
    metrics.record_cache("unit-test", hit=True)
    metrics.record_cache("unit-test", hit=True)
    metrics.record_cache("unit-test", hit=False)
    assert abs(_value("skillrelay_cache_hit_ratio", cache="unit-test") - 2 / 3) < 1e-9
    before = _value("skillrelay_sse_streams")
    with metrics.sse_stream():
        assert _value("skillrelay_sse_streams") == before + 1
    assert _value("skillrelay_sse_streams") == before
