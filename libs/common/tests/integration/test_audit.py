"""AuditRecorder against a real nats-server: records land in the AUDIT stream; a NATS restart loses
nothing that was recorded (buffered, then delivered after the reconnect); a full buffer drops the
oldest and counts it."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from skillrelay_common import metrics
from skillrelay_common.audit import POSITION_BASE, AuditRecorder, decode_records, read_records
from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import AUDIT_STREAM, audit_filter
from skillrelay_devstack.embedded import EmbeddedNats


def _namespace() -> str:
    """A prefix for this test's integration ids. Every test writes to the one AUDIT stream (audit.>):
    a private stream for audit.<id>.> would overlap it once any earlier test created it on the
    session's NATS, so fresh ids, not streams, keep the tests apart."""
    return f"mcpserver_t{uuid.uuid4().hex[:10]}"


async def _connect(url: str) -> tuple[Bus, asyncio.Event]:
    disconnected = asyncio.Event()

    async def on_disconnect() -> None:
        disconnected.set()

    bus = await Bus.connect(url, "test", reconnect_time_wait=0.1, disconnected_cb=on_disconnect)
    return bus, disconnected


@pytest.fixture
async def recorder(bus: Bus) -> AsyncIterator[tuple[AuditRecorder, str]]:
    audit = AuditRecorder(bus, "test")
    await audit.start()
    yield audit, _namespace()
    await audit.stop()


async def test_records_reach_the_stream_with_envelope_and_without_secrets(
    bus: Bus, recorder: tuple[AuditRecorder, str]
) -> None:
    audit, prefix = recorder
    integration = f"{prefix}_a"
    audit.record(
        "tool.call",
        integration,
        outcome="ok",
        principal="static:v1",
        latency_ms=12.3456,
        data={"tool": "echo", "token": "sr_mcp_should_not_appear", "authorization": "Bearer x"},
    )
    await asyncio.wait_for(audit.flush(), 10)

    items, more = await read_records(bus, audit_filter(integration), stream_name=AUDIT_STREAM.name)
    assert more is None
    [(position, record)] = items
    sequence = position // POSITION_BASE
    assert sequence >= 1
    assert record.subject == integration
    assert record.type == "dev.skillrelay.audit.v1.tool.call"
    assert record.source == f"/skillrelay/test/{bus.instance_id}"
    assert record.data.outcome == "ok" and record.data.principal == "static:v1"
    assert record.data.latency_ms == 12.346
    assert record.data.correlation_id
    assert record.data.details == {"tool": "echo", "token": "[redacted]", "authorization": "[redacted]"}
    raw = await bus.js.get_msg(AUDIT_STREAM.name, seq=sequence)
    assert raw.subject == f"audit.{integration}.tool.call"
    assert b"sr_mcp_should_not_appear" not in (raw.data or b"")


async def test_paging_by_integration(bus: Bus, recorder: tuple[AuditRecorder, str]) -> None:
    audit, prefix = recorder
    mine, other = f"{prefix}_m", f"{prefix}_o"
    for index in range(7):
        audit.record("mcp.request", mine, outcome="ok", data={"n": index})
        audit.record("mcp.request", other, outcome="ok")
    await asyncio.wait_for(audit.flush(), 10)
    seen: list[int] = []
    cursor: int | None = 1
    pages = 0
    while cursor is not None:
        items, cursor = await read_records(
            bus, audit_filter(mine), start=cursor, limit=3, stream_name=AUDIT_STREAM.name
        )
        seen.extend(record.data.details["n"] for _, record in items)
        pages += 1
    assert seen == list(range(7))
    assert pages == 3


async def test_records_queued_together_share_one_message_and_page_across_it(
    bus: Bus, recorder: tuple[AuditRecorder, str]
) -> None:
    audit, prefix = recorder
    integration = f"{prefix}_p"
    for index in range(150):  # more than one parcel holds
        audit.record("tool.call", integration, outcome="ok", data={"n": index})
    audit.record("mcp.request", integration, outcome="ok", data={"n": 150})
    before = (await bus.js.stream_info(AUDIT_STREAM.name)).state.messages
    await asyncio.wait_for(audit.flush(), 10)
    stored = (await bus.js.stream_info(AUDIT_STREAM.name)).state.messages - before
    assert stored <= 4, f"{stored} messages for 151 records: they were not parcelled"
    seen: list[int] = []
    cursor: int | None = 1
    while cursor is not None:  # pages of 7 end in the middle of parcels
        items, cursor = await read_records(
            bus, audit_filter(integration), start=cursor, limit=7, stream_name=AUDIT_STREAM.name
        )
        seen.extend(record.data.details["n"] for _, record in items)
    assert sorted(seen) == list(range(151)) and len(seen) == 151
    assert [n for n in seen if n < 150] == list(range(150))  # in order within a subject
    tool_calls, _ = await read_records(
        bus, f"audit.{integration}.tool.call", limit=1000, stream_name=AUDIT_STREAM.name
    )
    assert len(tool_calls) == 150
    first = await bus.js.get_msg(AUDIT_STREAM.name, seq=tool_calls[0][0] // POSITION_BASE)
    assert len(decode_records(first.data or b"")) == 64


async def test_bad_input_never_raises(recorder: tuple[AuditRecorder, str]) -> None:
    audit, _ = recorder
    audit.record("Not A Kind!", "x", outcome="ok")  # logged, not raised
    audit.record("tool.call", "bad.id.*", outcome="ok")  # lands under _unknown
    assert audit.pending <= 1


async def test_nats_restart_loses_nothing_recorded(tmp_path: Path) -> None:
    server = EmbeddedNats(store_dir=tmp_path / "nats")
    server.start()
    bus, disconnected = await _connect(server.url)
    audit = AuditRecorder(bus, "test", retry_wait=0.05)
    integration = f"{_namespace()}_r"
    try:
        await audit.start()
        for index in range(20):
            audit.record("mcp.request", integration, outcome="ok", data={"n": index})
        await asyncio.wait_for(audit.flush(), 10)  # acknowledged before the restart

        server.stop()
        await asyncio.wait_for(disconnected.wait(), 10)
        for index in range(20, 50):
            audit.record("mcp.request", integration, outcome="ok", data={"n": index})
        assert audit.pending > 0
        server.start()  # same port, same store folder

        await asyncio.wait_for(audit.flush(), 20)
        items, _ = await read_records(
            bus, audit_filter(integration), limit=1000, stream_name=AUDIT_STREAM.name
        )
        assert sorted(record.data.details["n"] for _, record in items) == list(range(50))
        assert audit.dropped == 0
    finally:
        await audit.stop(timeout=1)
        await bus.close()
        server.stop()


async def test_full_buffer_drops_oldest_and_counts(tmp_path: Path) -> None:
    server = EmbeddedNats(store_dir=tmp_path / "nats")
    server.start()
    bus, disconnected = await _connect(server.url)
    audit = AuditRecorder(bus, "test", max_buffer=5, retry_wait=0.05)
    integration = f"{_namespace()}_d"
    dropped_before = metrics.AUDIT_DROPPED._value.get()
    try:
        await audit.start()
        server.stop()
        await asyncio.wait_for(disconnected.wait(), 10)
        for index in range(8):
            audit.record("mcp.request", integration, outcome="ok", data={"n": index})
        assert audit.pending == 5 and audit.dropped == 3
        assert metrics.AUDIT_DROPPED._value.get() - dropped_before == 3
        server.start()
        await asyncio.wait_for(audit.flush(), 20)
        items, _ = await read_records(bus, audit_filter(integration), stream_name=AUDIT_STREAM.name)
        assert [record.data.details["n"] for _, record in items] == [3, 4, 5, 6, 7]
    finally:
        await audit.stop(timeout=1)
        await bus.close()
        server.stop()


async def test_nats_request_latency_is_observed(bus: Bus) -> None:
    from prometheus_client import REGISTRY

    from skillrelay_common.schemas.registry import ResolveIntegration
    from skillrelay_common.subjects import REGISTRY_INTEGRATION_RESOLVE

    metrics.observe_nats_requests()
    labels = {"subject": REGISTRY_INTEGRATION_RESOLVE.subject}
    before = REGISTRY.get_sample_value("skillrelay_nats_request_seconds_count", labels) or 0.0
    await bus.request(REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id="x"), timeout=0.2)
    assert REGISTRY.get_sample_value("skillrelay_nats_request_seconds_count", labels) == before + 1
