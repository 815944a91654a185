"""The live audit stream of one integration as Server-Sent Events.

Reads the ``AUDIT`` JetStream stream (``skillrelay_common.audit``, written by every service) through
an ephemeral ordered consumer filtered on ``audit.<integrationId>.>``: the last few minutes first,
then every new record as it is stored. Records never carry a token or secret (they are scrubbed when
recorded); the browser renders each field as text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import nats.errors
import structlog
from litestar import get
from litestar.params import FromPath
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage
from nats.js.api import ConsumerConfig, DeliverPolicy

from skillrelay_common.audit import decode_records
from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import AUDIT_STREAM, audit_filter
from skillrelay_registry.api.common import OwnerId, Service

BACKLOG = timedelta(minutes=15)
KEEPALIVE_SECONDS = 15.0
RETRY_MS = 3000

_log = structlog.get_logger("skillrelay.registry.dashboard")


def audit_rows(data: bytes) -> list[str]:
    """The records of one stored message (one, or a parcel) as the JSON the page shows; none for a
    message it cannot read."""
    try:
        records = decode_records(data)
    except msgspec.DecodeError:
        return []
    return [
        msgspec.json.encode(
            {
                "time": record.time,
                "kind": record.data.kind,
                "outcome": record.data.outcome,
                "principal": record.data.principal or "",
                "latencyMs": record.data.latency_ms,
                "details": record.data.details,
            }
        ).decode()
        for record in records
    ]


async def _records(bus: Bus, integration_id: FromPath[str]) -> AsyncIterator[ServerSentEventMessage]:
    yield ServerSentEventMessage(event="status", data="connecting", retry=RETRY_MS)
    try:
        subscription = await bus.js.subscribe(
            audit_filter(integration_id),
            stream=AUDIT_STREAM.name,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=datetime.now(UTC) - BACKLOG,
            ),
        )
    except Exception as exc:  # no AUDIT stream yet, or NATS is down: say so; the browser retries
        _log.warning("dashboard.audit.unavailable", integration_id=integration_id, error=type(exc).__name__)
        yield ServerSentEventMessage(event="status", data="unavailable")
        return
    try:
        yield ServerSentEventMessage(event="status", data="live")
        while True:
            try:
                message = await subscription.next_msg(timeout=KEEPALIVE_SECONDS)
            except (TimeoutError, nats.errors.TimeoutError):
                yield ServerSentEventMessage(comment="keepalive")
                continue
            for row in audit_rows(message.data):
                yield ServerSentEventMessage(event="audit", data=row)
    finally:
        try:
            await subscription.unsubscribe()
        except Exception as exc:  # the connection may be gone already
            _log.debug("dashboard.audit.unsubscribe_failed", error=type(exc).__name__)


def audit_stream_handler(get_bus: Callable[[], Bus]) -> Any:
    @get("/integrations/{integration_id:str}/audit/stream")
    async def stream_audit(
        service: Service, owner_id: OwnerId, integration_id: FromPath[str]
    ) -> ServerSentEvent:
        await service.get_integration(owner_id, integration_id)  # 404 unless it is the owner's
        return ServerSentEvent(_records(get_bus(), integration_id))

    return stream_audit
