"""Prometheus metrics of a Skillrelay process (``prometheus-client``, default registry).

Every metric is defined here once so names stay consistent across services. HTTP services mount
``metrics_routes()`` (``GET /metrics``) and ``metrics_middleware()``; owners update the gauges.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from litestar import Response, get
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from skillrelay_common.messaging import observe_requests

# --- audit ----------------------------------------------------------------------------------------

AUDIT_PUBLISHED = Counter(
    "skillrelay_audit_published_total", "Audit records acknowledged by the AUDIT stream"
)
AUDIT_DROPPED = Counter(
    "skillrelay_audit_dropped_total",
    "Audit records dropped because the in-memory buffer was full (NATS down for too long)",
)
AUDIT_BUFFERED = Gauge("skillrelay_audit_buffered", "Audit records waiting to be published")
AUDIT_PUBLISH_SECONDS = Histogram(
    "skillrelay_audit_publish_seconds",
    "Time from publishing a batch of audit records (up to 64) to the last JetStream acknowledgement",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

# --- HTTP -----------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "skillrelay_http_requests_total",
    "HTTP requests answered, by method, route template and outcome (2xx, 4xx, 5xx …)",
    ["method", "route", "outcome"],
)
HTTP_LATENCY = Histogram(
    "skillrelay_http_request_seconds",
    "Time to answer an HTTP request (until the last body byte; SSE streams: until they close)",
    ["method", "route", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
HTTP_IN_FLIGHT = Gauge("skillrelay_http_requests_in_flight", "HTTP requests being answered now")

# --- NATS -----------------------------------------------------------------------------------------

NATS_REQUEST_LATENCY = Histogram(
    "skillrelay_nats_request_seconds",
    "Time from sending a NATS request to its reply (or timeout), by subject",
    ["subject"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

# --- owners update these ----------------------------------------------------------------------------

CACHE_LOOKUPS = Counter(
    "skillrelay_cache_lookups_total",
    "Cache lookups by cache name and result (hit, miss)",
    ["cache", "result"],
)
CACHE_HIT_RATIO = Gauge(
    "skillrelay_cache_hit_ratio", "Hits / lookups of a cache since the process started", ["cache"]
)
# Calls forwarded to a skillset source's upstream (its id as the label: one per source, bounded by the
# registry's limits), by MCP method and outcome (ok, error: the upstream's own error, unreachable).
SOURCE_CALLS = Counter(
    "skillrelay_source_calls_total",
    "Calls forwarded to an upstream of a skillset source, by source id, MCP method and outcome",
    ["source", "method", "outcome"],
)
SOURCE_CALL_SECONDS = Histogram(
    "skillrelay_source_call_seconds",
    "Time from forwarding a call to a skillset source's upstream to its answer, by source id",
    ["source"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
OPEN_SESSIONS = Gauge("skillrelay_open_sessions", "MCP sessions this process holds open (or knows as live)")
SSE_STREAMS = Gauge("skillrelay_sse_streams", "Server-sent event streams open on this process")

_cache_counts: dict[str, list[int]] = {}


def record_cache(cache: str, hit: bool) -> None:
    """Count one lookup of ``cache`` and update its hit ratio gauge."""
    counts = _cache_counts.setdefault(cache, [0, 0])
    counts[0 if hit else 1] += 1
    CACHE_LOOKUPS.labels(cache, "hit" if hit else "miss").inc()
    CACHE_HIT_RATIO.labels(cache).set(counts[0] / (counts[0] + counts[1]))


@contextlib.contextmanager
def sse_stream() -> Iterator[None]:
    """Wrap the life of one SSE stream: ``with metrics.sse_stream(): ...``."""
    SSE_STREAMS.inc()
    try:
        yield
    finally:
        SSE_STREAMS.dec()


# --- wiring into a Litestar app ----------------------------------------------------------------------

_nats_hooked = False


def observe_nats_requests() -> None:
    """Feed ``Bus.request`` latencies into ``skillrelay_nats_request_seconds`` (once per process)."""
    global _nats_hooked
    if not _nats_hooked:
        _nats_hooked = True
        observe_requests(lambda subject, seconds: NATS_REQUEST_LATENCY.labels(subject).observe(seconds))


def metrics_routes() -> list[HTTPRouteHandler]:
    """``GET /metrics`` in the Prometheus text format (also hooks NATS request latencies)."""
    observe_nats_requests()

    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def metrics() -> Response[bytes]:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return [metrics]


def _outcome(status: int) -> str:
    return f"{status // 100}xx"


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Litestar middleware (``middleware=[metrics_middleware]``): counts and times every routed HTTP
    request by method, route template and outcome. ``/metrics`` itself is not counted."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        route = str(scope.get("path_template") or "<unmatched>")
        if route == "/metrics":
            await app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await app(scope, receive, send_wrapper)
        finally:
            HTTP_IN_FLIGHT.dec()
            key = (method, route, status // 100)
            series = children.get(key)
            if series is None:
                labels = (method, route, _outcome(status))
                series = children[key] = (HTTP_REQUESTS.labels(*labels), HTTP_LATENCY.labels(*labels))
            series[0].inc()
            series[1].observe(time.perf_counter() - started)

    # The labelled series, looked up once each (prometheus_client's labels() costs microseconds, on
    # every request). Bounded: methods, route templates and status classes.
    children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
    return middleware
