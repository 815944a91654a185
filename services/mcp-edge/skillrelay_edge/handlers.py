"""NATS entry points of the edge. Its liveness answers on FastStream like every service's; the
credential invalidations stay on the lean ``Bus`` beside the edge's hot path (``CredentialVerifier``
registers them), as do the worker and MCP event subscriptions."""

from __future__ import annotations

from typing import Any

from skillrelay_common.lifecycle import Wire, Wiring
from skillrelay_common.subjects import EDGE_CREDENTIALS_INVALIDATE, EDGE_PING, Endpoint
from skillrelay_edge.runtime import EdgeRuntime

# EDGE_CREDENTIALS_INVALIDATE is served by credentials.CredentialVerifier (registered in runtime).
SERVED_ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (EDGE_PING, EDGE_CREDENTIALS_INVALIDATE)


def make_register_handlers(runtime: EdgeRuntime) -> Wire:
    def register_handlers(wiring: Wiring) -> None:
        wiring.answers.serve_ping(EDGE_PING)
        runtime.build(wiring.bus)

    return register_handlers
