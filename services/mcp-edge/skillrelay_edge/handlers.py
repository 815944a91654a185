"""NATS entry points of the edge."""

from __future__ import annotations

from typing import Any

from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import EDGE_CREDENTIALS_INVALIDATE, EDGE_PING, Endpoint
from skillrelay_edge.runtime import EdgeRuntime

# EDGE_CREDENTIALS_INVALIDATE is served by credentials.CredentialVerifier (registered in runtime).
SERVED_ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (EDGE_PING, EDGE_CREDENTIALS_INVALIDATE)


def make_register_handlers(runtime: EdgeRuntime) -> Any:
    def register_handlers(bus: Bus) -> None:
        bus.serve_ping(EDGE_PING)
        runtime.build(bus)

    return register_handlers
