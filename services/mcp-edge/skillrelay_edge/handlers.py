"""NATS entry points of the edge."""

from __future__ import annotations

from typing import Any

from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import EDGE_PING, Endpoint

SERVED_ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (EDGE_PING,)


def register_handlers(bus: Bus) -> None:
    bus.serve_ping(EDGE_PING)
