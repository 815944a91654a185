"""The usage answer of the REST API and the dashboard (camelCase, nulls kept: a missing latency means
no call in that bin, not an unknown field)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from skillrelay_registry.usage.book import Figures, UsageReport


class Answer(msgspec.Struct, kw_only=True, rename="camel"):
    pass


class FiguresOut(Answer):
    calls: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None


class ToolUsageOut(FiguresOut):
    name: str


class UsagePointOut(FiguresOut):
    start: datetime


class UsageOut(Answer):
    """Calls, errors and latency of one MCP server over ``window`` (``1h`` or ``1d``), from its audit
    records. ``complete`` is false while this registry replica is still reading the audit stream's
    last day (shortly after it started)."""

    integration_id: str
    window: str
    bin_seconds: int
    start: datetime
    end: datetime
    complete: bool
    totals: FiguresOut
    refused: int
    tools: list[ToolUsageOut]
    series: list[UsagePointOut]


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


F = TypeVar("F", bound=FiguresOut)


def _figures(cls: type[F], figures: Figures, **extra: Any) -> F:
    return cls(
        calls=figures.calls,
        errors=figures.errors,
        error_rate=figures.error_rate,
        p50_ms=figures.p50_ms,
        p95_ms=figures.p95_ms,
        **extra,
    )


def usage_out(integration_id: str, report: UsageReport, *, complete: bool) -> UsageOut:
    return UsageOut(
        integration_id=integration_id,
        window=report.window,
        bin_seconds=report.bin_seconds,
        start=_time(report.start),
        end=_time(report.end),
        complete=complete,
        totals=_figures(FiguresOut, report.totals),
        refused=report.refused,
        tools=[_figures(ToolUsageOut, figures, name=name) for name, figures in report.tools],
        series=[_figures(UsagePointOut, p.figures, start=_time(p.start)) for p in report.series],
    )
