"""Server-side SVG charts for the metrics page: geometry computed here, drawn by the
template as <rect>/<text> elements (no script, no style attributes: CSP)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The daily bar chart's drawing area, in SVG user units (the SVG scales to its box).
BAR_WIDTH = 720
BAR_HEIGHT = 160
BAR_TOP = 10
BAR_LEFT = 30

WAIT_WIDTH = 720
WAIT_ROW = 28
WAIT_LABEL = 130
WAIT_VALUE = 220


def format_duration(seconds: float | None) -> str:
    """1 h 30 min, 2 d 4 h, 45 s; an em dash for none."""
    if seconds is None:
        return "—"
    if seconds < 0:  # clock skew or backfilled history: say so rather than hide it
        return "-" + format_duration(-seconds)
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes, _ = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def format_rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    ok_y: float
    ok_height: float
    bad_y: float
    bad_height: float
    title: str


def daily_bars(daily: list[dict[str, Any]]) -> dict[str, Any]:
    """A stacked bar per day: good deployments below, failures on top."""
    peak = max((d["deployments"] for d in daily), default=0)
    scale_max = max(peak, 1)
    slot = BAR_WIDTH / max(len(daily), 1)
    width = max(slot * 0.8, 1.0)
    bars = []
    for i, day in enumerate(daily):
        bad = day["failures"]
        ok = day["deployments"] - bad
        ok_h = BAR_HEIGHT * ok / scale_max
        bad_h = BAR_HEIGHT * bad / scale_max
        base = BAR_TOP + BAR_HEIGHT
        bars.append(
            Bar(
                x=round(BAR_LEFT + i * slot + (slot - width) / 2, 2),
                width=round(width, 2),
                ok_y=round(base - ok_h, 2),
                ok_height=round(ok_h, 2),
                bad_y=round(base - ok_h - bad_h, 2),
                bad_height=round(bad_h, 2),
                title=f"{day['date']}: {day['deployments']} deployment"
                f"{'' if day['deployments'] == 1 else 's'}, {bad} failed",
            )
        )
    return {
        "bars": bars,
        "peak": peak,
        "width": BAR_LEFT + BAR_WIDTH,
        "height": BAR_TOP + BAR_HEIGHT + 24,
        "axis_y": BAR_TOP + BAR_HEIGHT,
        "axis_x_end": BAR_LEFT + BAR_WIDTH,
        "label_y": BAR_TOP + BAR_HEIGHT + 16,
        "top_y": BAR_TOP + 4,
        "left": BAR_LEFT,
        "first": daily[0]["date"] if daily else "",
        "last": daily[-1]["date"] if daily else "",
        "right_label_x": BAR_LEFT + BAR_WIDTH,
    }


def wait_bars(waits: list[dict[str, Any]]) -> dict[str, Any]:
    """A horizontal bar per role: p90 (light) behind the median (dark)."""
    longest = max((w["p90_seconds"] or w["median_seconds"] or 0 for w in waits), default=0)
    span = WAIT_WIDTH - WAIT_LABEL - WAIT_VALUE
    rows = []
    for i, w in enumerate(waits):
        median = w["median_seconds"] or 0
        p90 = w["p90_seconds"] or median
        y = i * WAIT_ROW
        rows.append(
            {
                "label": w["role_label"],
                "y": y + 4,
                "text_y": y + 18,
                "median_width": round(span * median / longest, 2) if longest else 0,
                "p90_width": round(span * p90 / longest, 2) if longest else 0,
                "value": f"{format_duration(w['median_seconds'])} · p90 "
                f"{format_duration(w['p90_seconds'])}",
                "title": f"{w['role_label']}: median {format_duration(w['median_seconds'])}, "
                f"p90 {format_duration(w['p90_seconds'])} over {w['approvals']} approvals",
            }
        )
    return {
        "rows": rows,
        "width": WAIT_WIDTH,
        "height": max(len(rows), 1) * WAIT_ROW,
        "bar_x": WAIT_LABEL,
        "value_x": WAIT_WIDTH - WAIT_VALUE + 8,
    }


def rate_gauge(rate: float | None) -> dict[str, Any]:
    """A 0 to 100 % horizontal gauge for the change failure rate."""
    width = 240
    return {"width": width, "fill": round(width * (rate or 0), 2)}
