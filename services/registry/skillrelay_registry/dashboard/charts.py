"""Small inline SVG charts of usage, computed on the server: the page needs no chart library and the
content security policy stays strict (only presentation attributes, no inline style). Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from skillrelay_registry.usage.report import UsageOut

WIDTH = 600
HEIGHT = 120
TOP = 8  # room above the highest bar


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    y: float  # top of the calls bar
    height: float
    error_y: float  # top of the errors part (drawn over the bottom of the calls bar)
    error_height: float
    title: str


@dataclass(frozen=True)
class Chart:
    """Calls per bin as bars (errors in red at their foot) and p50/p95 latency as two lines."""

    width: int
    height: int
    bars: list[Bar]
    max_calls: int
    p50_points: str  # SVG polyline points; "" when there is no latency to draw
    p95_points: str
    max_latency_ms: float | None
    first_label: str
    last_label: str
    summary: str


def _when(bins_ago: int, bin_seconds: int) -> str:
    """How long ago a bin started, as the axis and the tooltips say it."""
    minutes = bins_ago * bin_seconds // 60
    if minutes == 0:
        return "now"
    return f"{minutes} min ago" if minutes < 120 else f"{minutes / 60:.4g} h ago"


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _line(values: list[float | None], step: float, scale: float, height: int) -> str:
    points = [
        f"{step * index + step / 2:.1f},{height - value * scale:.1f}"
        for index, value in enumerate(values)
        if value is not None
    ]
    return " ".join(points) if len(points) > 1 else ""


def usage_chart(usage: UsageOut, *, width: int = WIDTH, height: int = HEIGHT) -> Chart:
    series = usage.series
    step = width / max(len(series), 1)
    max_calls = max((point.calls for point in series), default=0)
    scale = (height - TOP) / max_calls if max_calls else 0.0
    bars = []
    last = len(series) - 1
    for index, point in enumerate(series):
        bar_height = point.calls * scale
        error_height = point.errors * scale
        bars.append(
            Bar(
                x=round(index * step + step * 0.1, 1),
                width=round(step * 0.8, 1),
                y=round(height - bar_height, 1),
                height=round(bar_height, 1),
                error_y=round(height - error_height, 1),
                error_height=round(error_height, 1),
                title=f"{point.start:%H:%M} UTC ({_when(last - index, usage.bin_seconds)}): "
                f"{point.calls} calls, {point.errors} errors, "
                f"p50 {_fmt_ms(point.p50_ms)}, p95 {_fmt_ms(point.p95_ms)}",
            )
        )
    latencies = [v for point in series for v in (point.p50_ms, point.p95_ms) if v is not None]
    max_latency = max(latencies, default=None)
    latency_scale = (height - TOP) / max_latency if max_latency else 0.0
    totals = usage.totals
    return Chart(
        width=width,
        height=height,
        bars=bars,
        max_calls=max_calls,
        p50_points=_line([p.p50_ms for p in series], step, latency_scale, height),
        p95_points=_line([p.p95_ms for p in series], step, latency_scale, height),
        max_latency_ms=max_latency,
        first_label=_when(len(series), usage.bin_seconds) if series else "",  # where the window starts
        last_label="now",
        summary=f"{totals.calls} calls, {totals.errors} errors ({totals.error_rate:.1%}), "
        f"p50 {_fmt_ms(totals.p50_ms)}, p95 {_fmt_ms(totals.p95_ms)}",
    )


def format_ms(value: float | None) -> str:
    return _fmt_ms(value)
