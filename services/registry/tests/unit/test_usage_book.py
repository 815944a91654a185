"""Usage figures from audit records, without I/O: bins, windows, percentiles, bounds."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from skillrelay_common.schemas.audit import AuditData, AuditRecord
from skillrelay_registry.usage.book import OTHER_TOOLS, UsageBook, bucket_upper_ms, latency_bucket
from skillrelay_registry.usage.feed import ingest
from skillrelay_registry.usage.report import usage_out

NOW = 1_800_000_000.0  # a minute boundary: 1_800_000_000 % 60 == 0


def _call(
    book: UsageBook, at: float, tool: str | None = "greet", outcome: str = "ok", ms: float = 10.0
) -> None:
    book.record_call("mcpserver_a", at, tool=tool, outcome=outcome, latency_ms=ms, now=NOW)


def test_calls_errors_and_latency_per_tool_over_the_last_hour() -> None:
    book = UsageBook()
    for index in range(95):
        _call(book, NOW - 30, ms=10.0 + index * 0.01)
    for _ in range(5):
        _call(book, NOW - 30, ms=1000.0, outcome="is_error")
    _call(book, NOW - 90, tool="search", outcome="error", ms=50.0)
    _call(book, NOW - 90, tool=None)  # tools/list and friends: counted, not a tool
    book.record_refused("mcpserver_a", NOW - 10, now=NOW)
    report = book.report("mcpserver_a", "1h", NOW)
    assert report.totals.calls == 102 and report.totals.errors == 6
    assert report.refused == 1
    assert [(name, f.calls, f.errors) for name, f in report.tools] == [("greet", 100, 5), ("search", 1, 1)]
    greet = report.tools[0][1]
    assert greet.error_rate == 0.05
    # Read from a histogram whose buckets are 20 % wide: the answer is the bucket's upper bound.
    assert greet.p50_ms is not None and 10.0 <= greet.p50_ms <= 12.0
    assert greet.p95_ms is not None and 10.0 <= greet.p95_ms <= 12.0
    assert report.tools[0][1].p95_ms != report.tools[1][1].p95_ms
    # Sixty one-minute bins, the last one the minute now running.
    assert len(report.series) == 60 and report.series[-1].start == NOW
    assert [p.figures.calls for p in report.series[-3:]] == [2, 100, 0]
    assert sum(p.figures.calls for p in report.series) == 102


def test_the_day_window_has_fifteen_minute_bins_and_keeps_what_the_hour_dropped() -> None:
    book = UsageBook()
    _call(book, NOW - 3 * 3600)
    _call(book, NOW - 2 * 86400)  # older than any window: not counted at all
    assert book.report("mcpserver_a", "1h", NOW).totals.calls == 0
    day = book.report("mcpserver_a", "1d", NOW)
    assert day.totals.calls == 1 and day.bin_seconds == 900 and len(day.series) == 96
    book.prune(NOW + 86400)
    assert len(book) == 0


def test_percentiles_come_from_the_histogram() -> None:
    book = UsageBook()
    for ms in [1.0] * 50 + [100.0] * 45 + [5000.0] * 5:
        _call(book, NOW - 1, ms=ms)
    figures = book.report("mcpserver_a", "1h", NOW).totals
    assert figures.p50_ms == round(bucket_upper_ms(latency_bucket(1.0)), 3)
    assert figures.p95_ms == round(bucket_upper_ms(latency_bucket(100.0)), 3)
    for ms in (0.01, 0.3, 7.0, 250.0, 60_000.0):
        assert ms <= bucket_upper_ms(latency_bucket(ms)) <= max(ms * 1.2, 0.05)


def test_memory_is_bounded_by_tools_and_servers() -> None:
    book = UsageBook(max_servers=2, max_tools=2)
    for tool in ("a", "b", "c", "d"):
        _call(book, NOW - 1, tool=tool)
    assert {name for name, _ in book.report("mcpserver_a", "1h", NOW).tools} == {"a", "b", OTHER_TOOLS}
    for server in ("mcpserver_b", "mcpserver_c"):
        book.record_call(server, NOW - 1, tool="x", outcome="ok", latency_ms=1.0, now=NOW)
    assert len(book) == 2
    assert book.report("mcpserver_a", "1h", NOW).totals.calls == 0  # the least recently active went


def _stored(kind: str, outcome: str, tool: str | None, at: float) -> bytes:
    details = {"method": "tools/call", "tool": tool} if tool else {"method": "tools/list"}
    record = AuditRecord(
        id="r",
        source="edge",
        type=f"dev.skillrelay.audit.v1.{kind}",
        time=datetime.fromtimestamp(at, UTC).isoformat(),
        subject="mcpserver_a",
        data=AuditData(kind=kind, outcome=outcome, latency_ms=3.0, details=details),
    )
    return msgspec.json.encode([record, record])  # a parcel of two


def test_ingest_reads_parcels_and_skips_other_kinds() -> None:
    book = UsageBook()
    assert ingest(book, "audit.mcpserver_a.tool.call", _stored("tool.call", "ok", "greet", NOW - 5), NOW) == 2
    assert (
        ingest(book, "audit.mcpserver_a.mcp.request", _stored("mcp.request", "ok", None, NOW - 5), NOW) == 2
    )
    assert (
        ingest(book, "audit.mcpserver_a.auth.failure", _stored("auth.failure", "401", None, NOW - 5), NOW)
        == 2
    )
    assert ingest(book, "audit.mcpserver_a.session.opened", b"not even json", NOW) == 0
    assert ingest(book, "audit.mcpserver_a.tool.call", b"{broken", NOW) == 0
    report = book.report("mcpserver_a", "1h", NOW)
    assert report.totals.calls == 4 and report.refused == 2 and report.tools[0][0] == "greet"
    out = msgspec.to_builtins(usage_out("mcpserver_a", report, complete=True))
    assert out["totals"]["calls"] == 4 and out["tools"][0]["name"] == "greet"
    assert set(out["series"][0]) == {"start", "calls", "errors", "errorRate", "p50Ms", "p95Ms"}
    assert out["series"][0]["p50Ms"] is None  # an empty bin has no latency, not a zero one


@pytest.mark.parametrize("window", ["1h", "1d"])
def test_an_unknown_server_has_an_empty_full_series(window: str) -> None:
    report = UsageBook().report("mcpserver_none", window, NOW)  # type: ignore[arg-type]
    assert (
        report.totals.calls == 0 and report.tools == [] and all(p.figures.calls == 0 for p in report.series)
    )
