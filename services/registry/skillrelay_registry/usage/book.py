"""Rolling usage figures per MCP server, kept in memory from the audit records. Pure: no I/O, no clock.

Two resolutions, so a day costs no more than an hour: one-minute bins for the last hour (the ``1h``
window) and fifteen-minute bins for the last day (``1d``). A bin holds, per tool (``""`` for MCP
requests that are not tool calls), the number of calls, of errors, and a latency histogram on a
geometric scale (each bucket 20 % wider than the one before, from 0.05 ms to about 10 minutes), so
p50/p95 are read from merged histograms with at most 20 % error and no samples are kept.

Bounded memory: at most ``MAX_TOOLS`` tools per server (more are counted under ``OTHER_TOOLS``), at
most ``MAX_SERVERS`` servers (the least recently active is forgotten first), and bins older than their
window are dropped as time moves on.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

Window = Literal["1h", "1d"]
WINDOWS: dict[Window, tuple[int, int]] = {"1h": (60, 60), "1d": (900, 96)}  # (bin seconds, bins)
MAX_TOOLS = 100
MAX_SERVERS = 10_000
OTHER_TOOLS = "(other tools)"
ERROR_OUTCOMES = frozenset({"error", "is_error"})
_FIRST_BUCKET_MS = 0.05
_RATIO = 1.2
_LOG_RATIO = math.log(_RATIO)
_LAST_BUCKET = 80  # 0.05 ms * 1.2**80: about 11 minutes


def latency_bucket(ms: float) -> int:
    if ms <= _FIRST_BUCKET_MS:
        return 0
    return min(_LAST_BUCKET, math.ceil(math.log(ms / _FIRST_BUCKET_MS) / _LOG_RATIO))


def bucket_upper_ms(bucket: int) -> float:
    return _FIRST_BUCKET_MS * _RATIO**bucket


@dataclass
class Tally:
    calls: int = 0
    errors: int = 0
    latencies: dict[int, int] = field(default_factory=dict)  # bucket → count

    def add(self, is_error: bool, latency_ms: float | None) -> None:
        self.calls += 1
        self.errors += is_error
        if latency_ms is not None and latency_ms >= 0:
            bucket = latency_bucket(latency_ms)
            self.latencies[bucket] = self.latencies.get(bucket, 0) + 1

    def merge(self, other: Tally) -> None:
        self.calls += other.calls
        self.errors += other.errors
        for bucket, count in other.latencies.items():
            self.latencies[bucket] = self.latencies.get(bucket, 0) + count

    def percentile(self, fraction: float) -> float | None:
        total = sum(self.latencies.values())
        if total == 0:
            return None
        rank = math.ceil(fraction * total)
        seen = 0
        for bucket in sorted(self.latencies):
            seen += self.latencies[bucket]
            if seen >= rank:
                return round(bucket_upper_ms(bucket), 3)
        return None  # pragma: no cover - the loop always reaches rank


@dataclass(frozen=True)
class Figures:
    calls: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None

    @staticmethod
    def of(tally: Tally) -> Figures:
        return Figures(
            calls=tally.calls,
            errors=tally.errors,
            error_rate=round(tally.errors / tally.calls, 4) if tally.calls else 0.0,
            p50_ms=tally.percentile(0.5),
            p95_ms=tally.percentile(0.95),
        )


@dataclass(frozen=True)
class Point:
    start: float  # epoch seconds of the bin's start
    figures: Figures


@dataclass(frozen=True)
class UsageReport:
    window: Window
    bin_seconds: int
    start: float
    end: float
    totals: Figures
    refused: int  # requests refused for their credentials (auth.failure)
    tools: list[tuple[str, Figures]]  # most called first
    series: list[Point]  # every bin of the window, oldest first, empty ones included


@dataclass
class _Bin:
    tallies: dict[str, Tally] = field(default_factory=dict)  # tool ("" = not a tool call) → tally
    refused: int = 0


@dataclass
class _Server:
    # window → bin index (start // bin seconds) → bin
    bins: dict[Window, dict[int, _Bin]] = field(default_factory=lambda: {w: {} for w in WINDOWS})
    tools: set[str] = field(default_factory=set)


class UsageBook:
    def __init__(self, *, max_servers: int = MAX_SERVERS, max_tools: int = MAX_TOOLS) -> None:
        self._servers: OrderedDict[str, _Server] = OrderedDict()
        self._max_servers = max_servers
        self._max_tools = max_tools

    def __len__(self) -> int:
        return len(self._servers)

    def record_call(
        self,
        integration_id: str,
        at: float,
        *,
        tool: str | None,
        outcome: str,
        latency_ms: float | None,
        now: float,
    ) -> None:
        """One MCP request (``tool`` set for a tool call) that happened at ``at`` (epoch seconds)."""
        bins = self._bins_for(integration_id, at, now)
        if not bins:
            return
        server = self._servers[integration_id]
        name = "" if tool is None else tool
        if name and name not in server.tools:
            if len(server.tools) >= self._max_tools:
                name = OTHER_TOOLS
            server.tools.add(name)
        for bin_ in bins:
            bin_.tallies.setdefault(name, Tally()).add(outcome in ERROR_OUTCOMES, latency_ms)

    def record_refused(self, integration_id: str, at: float, *, now: float) -> None:
        for bin_ in self._bins_for(integration_id, at, now):
            bin_.refused += 1

    def _bins_for(self, integration_id: str, at: float, now: float) -> list[_Bin]:
        """The bins a record at ``at`` falls in, in the windows it is still inside of."""
        windows = [
            (w, seconds) for w, (seconds, count) in WINDOWS.items() if at // seconds > now // seconds - count
        ]
        if not windows:
            return []
        server = self._server(integration_id)
        return [server.bins[w].setdefault(int(at // seconds), _Bin()) for w, seconds in windows]

    def prune(self, now: float) -> None:
        """Forget bins that fell out of their window (and servers left with none)."""
        for integration_id in list(self._servers):
            server = self._servers[integration_id]
            for window, (seconds, count) in WINDOWS.items():
                oldest = int(now // seconds) - count + 1
                bins = server.bins[window]
                for index in [i for i in bins if i < oldest]:
                    del bins[index]
            if not any(server.bins.values()):
                del self._servers[integration_id]

    def report(self, integration_id: str, window: Window, now: float) -> UsageReport:
        seconds, count = WINDOWS[window]
        last = int(now // seconds)
        first = last - count + 1
        server = self._servers.get(integration_id)
        bins = server.bins[window] if server is not None else {}
        totals, per_tool, refused, series = Tally(), dict[str, Tally](), 0, []
        for index in range(first, last + 1):
            bin_ = bins.get(index)
            point = Tally()
            if bin_ is not None:
                refused += bin_.refused
                for tool, tally in bin_.tallies.items():
                    point.merge(tally)
                    if tool:
                        per_tool.setdefault(tool, Tally()).merge(tally)
            totals.merge(point)
            series.append(Point(start=float(index * seconds), figures=Figures.of(point)))
        tools = sorted(
            ((name, Figures.of(tally)) for name, tally in per_tool.items()),
            key=lambda item: (-item[1].calls, item[0]),
        )
        return UsageReport(
            window=window,
            bin_seconds=seconds,
            start=float(first * seconds),
            end=float((last + 1) * seconds),
            totals=Figures.of(totals),
            refused=refused,
            tools=tools,
            series=series,
        )

    def _server(self, integration_id: str) -> _Server:
        server = self._servers.get(integration_id)
        if server is None:
            if len(self._servers) >= self._max_servers:
                self._servers.popitem(last=False)  # the least recently active
            server = self._servers[integration_id] = _Server()
        else:
            self._servers.move_to_end(integration_id)
        return server
