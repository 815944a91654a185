"""NATS entry points of the auth service: decode, call the service, encode. Nothing else."""

from __future__ import annotations

from typing import Any

from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import AUTH_PING, Endpoint

# Every endpoint this service answers (the contract test checks each subject has exactly one owner).
SERVED_ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (AUTH_PING,)


def register_handlers(bus: Bus) -> None:
    bus.serve_ping(AUTH_PING)
