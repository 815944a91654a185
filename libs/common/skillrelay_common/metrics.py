"""Prometheus metrics of a Skillrelay process (``prometheus-client``, default registry).

Every metric is defined here once so names stay consistent across services. HTTP services mount
``metrics_routes()`` (``GET /metrics``) and ``metrics_middleware()``; owners update the gauges.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
    "Time from publishing an audit record to its JetStream acknowledgement",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
