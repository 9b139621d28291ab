"""One gully's chart: water level with its warning, critical and outlet-invert lines and the alerts raised,
the rate of rise beneath, battery and signal at the bottom, on one shared time axis.

Level is what an engineer reasons in (mm above the pot floor: `store.geometry.water_level_mm`), not the
sensor's distance. A short range plots every reading; a long one arrives bucketed (`store.reading_series`
Bucket), and then the mean line alone would flatten a storm's half-hour peak into a year's daily mean,
so a min-max band is drawn around it: a peak is never hidden by the resolution chosen.

Lines do not bridge silence: where the readings stop for a while (an outage, a flat battery) the line
and the band break, and the rate of rise is not computed across the gap, so nothing is drawn that was
never measured.

Pure: plain data in, a figure out; the caller fetches and computes thresholds (`threshold_mm`).
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go

from dashboard.figures.style import (
    BAND,
    BLUE,
    DARK_RED,
    GREEN,
    GREY,
    PURPLE,
    VERMILLION,
    figure,
    no_data,
    utc_text,
)
from store.geometry import water_level_mm
from store.radio import RadioSample
from store.reading_series import Bucket
from store.records import Reading

#: Consecutive readings further apart than this many typical steps (buckets: bucket widths) are a gap,
#: but never less than MIN_GAP.
GAP_STEPS = 3
#: The smallest silence drawn as a gap: a sensor that reports every 15 minutes may skip one or two.
MIN_GAP = timedelta(hours=1)
#: Above this many points, markers would be noise on the line; below it they show isolated readings.
MAX_MARKED_POINTS = 1000
_HOUR_S = 3600.0

#: How each alert severity is marked (shape and colour both; the hover text names it too).
SEVERITY_MARKERS: dict[str, tuple[str, str]] = {
    "critical": ("star", DARK_RED),
    "warning": ("diamond", VERMILLION),
    "info": ("circle", GREY),
}


@dataclass(frozen=True, slots=True)
class AlertMarker:
    """An alert to mark on the chart: when it opened, its category and severity, a short label
    (e.g. the rule's summary). The severity picks the marker; unknown severities are marked as info."""

    time: datetime
    category: str
    severity: str
    label: str


@dataclass(frozen=True, slots=True)
class LevelPoint:
    """Water level at one time: a reading (low = mean = high, count 1) or a bucket's statistics, placed
    at the bucket's middle."""

    time: datetime
    mean_mm: float
    low_mm: float
    high_mm: float
    count: int


def threshold_mm(pct: float | None, sensor_height_mm: float | None, outlet_invert_mm: float | None) -> float | None:
    """The level of a flood rule's fill percentage: `invert + pct/100 * (sensor_height - invert)`, the
    inverse of `store.geometry.fill_pct`. None when anything is unknown or the geometry is impossible."""
    if pct is None or sensor_height_mm is None or outlet_invert_mm is None:
        return None
    if not all(math.isfinite(v) for v in (pct, sensor_height_mm, outlet_invert_mm)):
        return None
    span = sensor_height_mm - outlet_invert_mm
    if span <= 0:
        return None
    return outlet_invert_mm + pct / 100.0 * span


def rate_of_rise(
    times: Sequence[datetime], levels: Sequence[float | None], *, max_gap: timedelta | None = None
) -> list[float | None]:
    """mm/h between each level and the one before it, aligned with `times` (the first is None). None
    where either level is unknown, time does not advance, or the step is longer than `max_gap`: a rate
    across an outage would be an invention."""
    if len(times) != len(levels):
        raise ValueError(f"{len(times)} times but {len(levels)} levels")
    rates: list[float | None] = [None] * len(times)
    for i in range(1, len(times)):
        before, after = levels[i - 1], levels[i]
        step = times[i] - times[i - 1]
        if before is None or after is None or step <= timedelta(0) or (max_gap is not None and step > max_gap):
            continue
        rates[i] = (after - before) / (step.total_seconds() / _HOUR_S)
    return rates


def gap_limit(times: Sequence[datetime]) -> timedelta:
    """The longest step still drawn as continuous: GAP_STEPS typical (median) steps, at least MIN_GAP."""
    steps = [b - a for a, b in itertools.pairwise(times) if b > a]
    if not steps:
        return MIN_GAP
    return max(MIN_GAP, GAP_STEPS * statistics.median_low(steps))


def points_from_readings(readings: Sequence[Reading], sensor_height_mm: float) -> list[LevelPoint]:
    """Levels of raw readings, oldest first; readings without a (valid) distance are left out."""
    points = []
    for r in readings:
        level = None if r.distance_valid is False else water_level_mm(r.distance_mm, sensor_height_mm)
        if level is not None:
            points.append(LevelPoint(r.time, level, level, level, 1))
    return sorted(points, key=lambda p: p.time)


def points_from_buckets(buckets: Sequence[Bucket], width: timedelta, sensor_height_mm: float) -> list[LevelPoint]:
    """Levels of bucketed distances, at each bucket's middle. Level falls as distance grows, so the
    highest level is the sensor height minus the *smallest* distance."""
    points = []
    for b in buckets:
        d = b.quantities.get("distance_mm")
        if d is None:
            continue
        mean = water_level_mm(d.mean, sensor_height_mm)
        low = water_level_mm(d.max, sensor_height_mm)
        high = water_level_mm(d.min, sensor_height_mm)
        if mean is not None and low is not None and high is not None:
            points.append(LevelPoint(b.start + width / 2, mean, low, high, d.count))
    return sorted(points, key=lambda p: p.time)


def _segments(times: Sequence[datetime], limit: timedelta) -> list[range]:
    """Index runs with no step longer than `limit`."""
    runs: list[range] = []
    start = 0
    for i in range(1, len(times)):
        if times[i] - times[i - 1] > limit:
            runs.append(range(start, i))
            start = i
    if times:
        runs.append(range(start, len(times)))
    return runs


def _broken(times: Sequence[datetime], values: Sequence[Any], limit: timedelta) -> tuple[list[str | None], list[Any]]:
    """x and y for a line that breaks where the step exceeds `limit` (a None y between the runs)."""
    xs: list[str | None] = []
    ys: list[Any] = []
    for n, run in enumerate(_segments(times, limit)):
        if n:
            xs.append(utc_text(times[run[0] - 1] + (times[run[0]] - times[run[0] - 1]) / 2))
            ys.append(None)
        xs += [utc_text(times[i]) for i in run]
        ys += [values[i] for i in run]
    return xs, ys


def _band(points: Sequence[LevelPoint], limit: timedelta) -> dict[str, Any]:
    """The min-max area: one closed polygon per continuous run, None between them (`fill="toself"`)."""
    xs: list[str | None] = []
    ys: list[float | None] = []
    times = [p.time for p in points]
    for n, run in enumerate(_segments(times, limit)):
        if n:
            xs.append(None)
            ys.append(None)
        seg = [points[i] for i in run]
        xs += [utc_text(p.time) for p in seg] + [utc_text(p.time) for p in reversed(seg)]
        ys += [p.high_mm for p in seg] + [p.low_mm for p in reversed(seg)]
    return {
        "type": "scatter",
        "x": xs,
        "y": ys,
        "name": "min–max in each interval",
        "mode": "lines",
        "fill": "toself",
        "fillcolor": BAND,
        "line": {"width": 0},
        "hoverinfo": "skip",
        "legendgroup": "level",
    }


def _mode(n: int) -> str:
    """Markers too while there are few points, so an isolated reading between two gaps still shows."""
    return "lines+markers" if n <= MAX_MARKED_POINTS else "lines"


def level_range(points: Sequence[LevelPoint], lines: Sequence[float | None]) -> list[float] | None:
    """The level axis: every reading's extremes and every threshold line, padded so a line's label at
    the edge stays inside the plot. None (autorange) when there is nothing to show."""
    values = [v for p in points for v in (p.low_mm, p.high_mm)]
    values += [v for v in lines if v is not None and math.isfinite(v)]
    if not values:
        return None
    low, high = min(values), max(values)
    pad = max(0.08 * (high - low), 20.0)
    return [low - pad, high + pad]


def _level_trace(points: Sequence[LevelPoint], limit: timedelta, bucketed: bool) -> dict[str, Any]:
    times = [p.time for p in points]
    xs, ys = _broken(times, [p.mean_mm for p in points], limit)
    trace: dict[str, Any] = {
        "type": "scatter",
        "x": xs,
        "y": ys,
        "name": "water level",
        "mode": _mode(len(points)),
        "line": {"color": BLUE, "width": 2},
        "marker": {"size": 4, "color": BLUE},
        "hovertemplate": "%{x|%Y-%m-%d %H:%M} UTC<br>level %{y:.0f} mm<extra></extra>",
        "legendgroup": "level",
    }
    if not bucketed:
        return trace
    _, extra = _broken(times, [[p.low_mm, p.high_mm, p.count] for p in points], limit)
    return trace | {
        "name": "mean water level",
        "customdata": [c if c is not None else [None, None, None] for c in extra],
        "hovertemplate": (
            "%{x|%Y-%m-%d %H:%M} UTC<br>mean %{y:.0f} mm<br>"
            "min %{customdata[0]:.0f} mm, max %{customdata[1]:.0f} mm<br>%{customdata[2]} readings<extra></extra>"
        ),
    }


def _threshold_shapes(
    warning_mm: float | None, critical_mm: float | None, outlet_invert_mm: float | None
) -> list[dict[str, Any]]:
    """Horizontal lines across the level panel, each with its name and value in text and its own dash."""
    lines = [
        ("critical", critical_mm, DARK_RED, "solid"),
        ("warning", warning_mm, VERMILLION, "dash"),
        ("outlet invert", outlet_invert_mm, GREY, "dot"),
    ]
    return [
        {
            "type": "line",
            "name": name,
            "xref": "x domain",
            "yref": "y",
            "x0": 0,
            "x1": 1,
            "y0": value,
            "y1": value,
            "line": {"color": colour, "width": 2, "dash": dash},
            "label": {
                "text": f"{name} {value:.0f} mm",
                "textposition": "end",
                "yanchor": "bottom",
                "font": {"color": colour, "size": 12},
            },
        }
        for name, value, colour, dash in lines
        if value is not None and math.isfinite(value)
    ]


def _level_at(points: Sequence[LevelPoint], t: datetime, fallback: float) -> float:
    """The level line's height at `t` (linear between neighbours, the end value beyond them)."""
    if not points:
        return fallback
    times = [p.time for p in points]
    i = bisect.bisect_left(times, t)
    if i == 0:
        return points[0].mean_mm
    if i == len(points):
        return points[-1].mean_mm
    a, b = points[i - 1], points[i]
    share = (t - a.time) / (b.time - a.time)
    return a.mean_mm + share * (b.mean_mm - a.mean_mm)


def _alert_traces(alerts: Sequence[AlertMarker], points: Sequence[LevelPoint], fallback: float) -> list[dict[str, Any]]:
    """One trace per severity (so the legend names it), markers on the level line at each alert's time."""
    traces = []
    for severity, (symbol, colour) in SEVERITY_MARKERS.items():
        chosen = sorted(
            (a for a in alerts if (a.severity if a.severity in SEVERITY_MARKERS else "info") == severity),
            key=lambda a: a.time,
        )
        if not chosen:
            continue
        traces.append(
            {
                "type": "scatter",
                "x": [utc_text(a.time) for a in chosen],
                "y": [_level_at(points, a.time, fallback) for a in chosen],
                "text": [f"{a.category} ({a.severity}): {a.label}" for a in chosen],
                "name": f"{severity} alert",
                "mode": "markers",
                "marker": {"symbol": symbol, "size": 14, "color": colour, "line": {"color": "#ffffff", "width": 1}},
                "hovertemplate": "%{x|%Y-%m-%d %H:%M} UTC<br>%{text}<extra></extra>",
            }
        )
    return traces


def gully_level_figure(
    title: str,
    *,
    start: datetime,
    end: datetime,
    sensor_height_mm: float,
    outlet_invert_mm: float | None = None,
    warning_mm: float | None = None,
    critical_mm: float | None = None,
    readings: Sequence[Reading] = (),
    buckets: Sequence[Bucket] = (),
    bucket_width: timedelta | None = None,
    alerts: Sequence[AlertMarker] = (),
    radio: Sequence[RadioSample] = (),
    uirevision: str | None = None,
) -> go.Figure:
    """The chart of one gully over [start, end): raw `readings`, or `buckets` of `bucket_width` (not both).

    `warning_mm` and `critical_mm` are levels (see `threshold_mm`). `radio` gives the signal (RSSI);
    battery comes from the readings or buckets. `uirevision` must stay the same across refreshes of one
    view (so a refresh keeps the user's zoom) and change when the user picks another range; default:
    the title.
    """
    if readings and buckets:
        raise ValueError("pass raw readings or buckets, not both")
    if buckets and bucket_width is None:
        raise ValueError("buckets need their bucket_width")
    bucketed = bool(buckets)
    if bucketed:
        assert bucket_width is not None
        points = points_from_buckets(buckets, bucket_width, sensor_height_mm)
    else:
        points = points_from_readings(readings, sensor_height_mm)
    times = [p.time for p in points]
    # a bucket holds every reading of its interval, so a missing one is silence, whatever the spacing
    limit = max(MIN_GAP, GAP_STEPS * bucket_width) if bucketed and bucket_width else gap_limit(times)

    level_traces: list[dict[str, Any]] = []
    rate_traces: list[dict[str, Any]] = []
    if points:
        if bucketed:
            level_traces.append(_band(points, limit))
        level_traces.append(_level_trace(points, limit, bucketed))
        rates = rate_of_rise(times, [p.mean_mm for p in points], max_gap=limit)
        xs, ys = _broken(times, rates, limit)
        rate_traces.append(
            {
                "type": "scatter",
                "x": xs,
                "y": ys,
                "name": "rate of rise",
                "mode": "lines",
                "line": {"color": GREEN, "width": 1.5},
                "hovertemplate": "%{x|%Y-%m-%d %H:%M} UTC<br>%{y:+.0f} mm/h<extra></extra>",
            }
        )
    fallback = next((v for v in (warning_mm, critical_mm) if v is not None), sensor_height_mm)
    level_traces += _alert_traces(alerts, points, fallback)
    battery, signal = _health(readings, buckets, bucket_width, radio, limit)

    # three panels on one time axis, as plotly.subplots.make_subplots(rows=3, shared_xaxes=True,
    # vertical_spacing=0.06, row_heights=[0.6, 0.2, 0.2], the last with secondary_y) lays them out
    x_range = [utc_text(start), utc_text(end)]
    shared = {"type": "date", "range": x_range, "domain": [0.0, 0.94]}
    rssi = {"title": {"text": "signal RSSI (dBm)"}}
    layout: dict[str, Any] = {
        "title": {"text": title},
        "uirevision": title if uirevision is None else uirevision,
        "shapes": _threshold_shapes(warning_mm, critical_mm, outlet_invert_mm),
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        "hovermode": "closest",
        "margin": {"t": 90},
        "xaxis": {"anchor": "y", "matches": "x3", "showticklabels": False, **shared},
        "xaxis2": {"anchor": "y2", "matches": "x3", "showticklabels": False, **shared},
        "xaxis3": {"anchor": "y3", "title": {"text": "time (UTC)"}, **shared},
        "yaxis": {
            "anchor": "x",
            "domain": [0.472, 1.0],
            "title": {"text": "water level (mm above pot floor)"},
            "range": level_range(points, (warning_mm, critical_mm, outlet_invert_mm)),
        },
        "yaxis2": {
            "anchor": "x2",
            "domain": [0.236, 0.412],
            "title": {"text": "rate of rise (mm/h)"},
            "zeroline": True,
            "zerolinecolor": GREY,
        },
        # without a battery series the signal takes the panel's own axis: plotly.js draws an overlay
        # axis whose base axis has no trace across the whole figure's height
        "yaxis3": {"anchor": "x3", "domain": [0.0, 0.176], **({"title": {"text": "battery (V)"}} if battery else rssi)},
        "yaxis4": {"anchor": "x3", "overlaying": "y3", "side": "right", "showgrid": False, **(rssi if battery else {})},
    }
    health = [(battery, "y3"), (signal, "y4" if battery else "y3")]
    traces = (
        [t | {"xaxis": "x", "yaxis": "y"} for t in level_traces]
        + [t | {"xaxis": "x2", "yaxis": "y2"} for t in rate_traces]
        + [t | {"xaxis": "x3", "yaxis": axis} for t, axis in health if t is not None]
    )
    if not points:
        layout["annotations"] = [no_data("no readings in this range")]
    return figure(traces, layout)


def _health(
    readings: Sequence[Reading],
    buckets: Sequence[Bucket],
    bucket_width: timedelta | None,
    radio: Sequence[RadioSample],
    limit: timedelta,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The bottom panel's battery (V, solid) and RSSI (dBm, dotted) traces; either may be None."""
    battery: list[tuple[datetime, float]] = [(r.time, r.battery_v) for r in readings if r.battery_v is not None]
    if bucket_width is not None:
        battery += [
            (b.start + bucket_width / 2, b.quantities["battery_v"].mean) for b in buckets if "battery_v" in b.quantities
        ]
    battery.sort()
    signal = sorted((s.time, s.rssi_dbm) for s in radio if s.rssi_dbm is not None)
    traces: list[dict[str, Any] | None] = []
    for series, own_limit, name, line, hover in (
        (battery, limit, "battery", {"color": VERMILLION, "width": 1.5}, "battery %{y:.2f} V"),
        (signal, MIN_GAP, "signal (RSSI)", {"color": PURPLE, "width": 1, "dash": "dot"}, "RSSI %{y:.0f} dBm"),
    ):
        if not series:
            traces.append(None)
            continue
        times = [t for t, _ in series]
        xs, ys = _broken(times, [v for _, v in series], max(own_limit, gap_limit(times)))
        traces.append(
            {
                "type": "scatter",
                "x": xs,
                "y": ys,
                "name": name,
                "mode": _mode(len(series)),
                "marker": {"size": 3},
                "line": line,
                "hovertemplate": f"%{{x|%Y-%m-%d %H:%M}} UTC<br>{hover}<extra></extra>",
            }
        )
    return traces[0], traces[1]


__all__ = [
    "AlertMarker",
    "LevelPoint",
    "gap_limit",
    "gully_level_figure",
    "level_range",
    "points_from_buckets",
    "points_from_readings",
    "rate_of_rise",
    "threshold_mm",
]
