"""The gully chart: levels from distances, threshold lines where the rule puts them, a min-max band that
keeps a storm's peak in a bucketed range, rate of rise, alerts on the level line, and an honest empty chart."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import plotly.graph_objects as go
import pytest

from dashboard.figures.level import AlertMarker, gully_level_figure, rate_of_rise, threshold_mm
from store.geometry import fill_pct
from store.radio import RadioSample
from store.reading_series import Bucket, Stats
from store.records import Reading

T0 = datetime(2024, 12, 3, 0, 0, tzinfo=UTC)
H = 1200.0  # sensor height
INVERT = 400.0


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def text(t: datetime) -> str:
    return t.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def reading(minutes: float, distance: float | None, **values: Any) -> Reading:
    return Reading(1, "gully-1", "app", at(minutes), distance_mm=distance, **values)


def trace(fig, name: str):
    found = [t for t in fig.data if t.name == name]
    assert len(found) == 1, [t.name for t in fig.data]
    return found[0]


def shape(fig, name: str):
    found = [s for s in fig.layout.shapes if s.name == name]
    assert len(found) == 1, [s.name for s in fig.layout.shapes]
    return found[0]


def raw_figure(readings: list[Reading], **kw: Any) -> go.Figure:
    args: dict[str, Any] = {
        "start": T0,
        "end": at(360),
        "sensor_height_mm": H,
        "outlet_invert_mm": INVERT,
        "warning_mm": threshold_mm(50, H, INVERT),
        "critical_mm": threshold_mm(80, H, INVERT),
        "readings": readings,
    }
    return gully_level_figure("Gully 1, High Street", **(args | kw))


# --- threshold_mm -----------------------------------------------------------------------------------


def test_threshold_is_the_share_of_the_span_between_invert_and_sensor() -> None:
    assert threshold_mm(0, H, INVERT) == INVERT
    assert threshold_mm(50, H, INVERT) == 800.0
    assert threshold_mm(80, H, INVERT) == 1040.0
    assert threshold_mm(100, H, INVERT) == H


@pytest.mark.parametrize("pct", [0.0, 12.5, 65.0, 93.0, 100.0])
def test_threshold_is_the_inverse_of_fill_pct(pct: float) -> None:
    level = threshold_mm(pct, H, INVERT)
    assert fill_pct(level, H, INVERT) == pytest.approx(pct)


@pytest.mark.parametrize(
    ("pct", "height", "invert"),
    [
        (None, H, INVERT),
        (50, None, INVERT),
        (50, H, None),
        (50, 400.0, 400.0),
        (50, 300.0, 400.0),
        (float("nan"), H, 0),
    ],
)
def test_threshold_of_unknown_or_impossible_geometry_is_none(pct, height, invert) -> None:
    assert threshold_mm(pct, height, invert) is None


# --- rate_of_rise -----------------------------------------------------------------------------------


def test_rate_of_rise_on_a_hand_made_series() -> None:
    times = [at(0), at(15), at(30), at(60), at(60), at(75)]
    levels = [100.0, 110.0, 105.0, 135.0, 140.0, None]
    # +10 mm in 15 min = +40 mm/h; -5 in 15 = -20; +30 in 30 = +60; no time passed; unknown level
    assert rate_of_rise(times, levels) == [None, 40.0, -20.0, 60.0, None, None]


def test_rate_of_rise_is_not_computed_across_a_gap() -> None:
    times = [at(0), at(15), at(315), at(330)]
    levels = [100.0, 110.0, 300.0, 303.0]
    assert rate_of_rise(times, levels, max_gap=timedelta(hours=1)) == [None, 40.0, None, 12.0]
    assert rate_of_rise(times, levels)[2] == pytest.approx(38.0)  # without a limit: 190 mm over 5 h


def test_rate_of_rise_of_nothing_and_mismatched_inputs() -> None:
    assert rate_of_rise([], []) == []
    assert rate_of_rise([at(0)], [5.0]) == [None]
    with pytest.raises(ValueError, match="2 times but 1 levels"):
        rate_of_rise([at(0), at(1)], [1.0])


# --- raw readings -----------------------------------------------------------------------------------


def test_raw_levels_are_sensor_height_minus_distance_and_invalid_echoes_are_left_out() -> None:
    fig = raw_figure(
        [
            reading(0, 900.0),
            reading(15, 850.0),
            reading(30, 10.0, distance_valid=False),  # a spider on the sensor face, not a flood
            reading(45, None),
            reading(60, 800.0),
        ]
    )
    level = trace(fig, "water level")
    assert list(level.y) == [300.0, 350.0, 400.0]
    assert list(level.x) == [text(at(0)), text(at(15)), text(at(60))]
    assert level.yaxis == "y"


def test_thresholds_and_invert_are_lines_at_their_levels_labelled_in_text_with_their_own_dash() -> None:
    fig = raw_figure([reading(0, 900.0)])
    lines = {name: shape(fig, name) for name in ("warning", "critical", "outlet invert")}
    assert (lines["warning"].y0, lines["warning"].y1) == (800.0, 800.0)
    assert (lines["critical"].y0, lines["critical"].y1) == (1040.0, 1040.0)
    assert (lines["outlet invert"].y0, lines["outlet invert"].y1) == (INVERT, INVERT)
    assert lines["warning"].label.text == "warning 800 mm"
    assert lines["critical"].label.text == "critical 1040 mm"
    assert lines["outlet invert"].label.text == "outlet invert 400 mm"
    assert all(s.yref == "y" and s.xref == "x domain" for s in lines.values())
    assert len({s.line.dash for s in lines.values()}) == 3
    # the axis holds every line with room for its label, even far above the data
    low, high = fig.layout.yaxis.range
    assert low < 300.0 and high > 1040.0


def test_missing_thresholds_draw_no_line() -> None:
    fig = raw_figure([reading(0, 900.0)], warning_mm=None, critical_mm=None, outlet_invert_mm=None)
    assert fig.layout.shapes == ()


def test_alerts_are_markers_on_the_level_line_with_hover_text_one_trace_per_severity() -> None:
    alerts = [
        AlertMarker(at(7.5), "rising", "warning", "rising 40 mm/h"),
        AlertMarker(at(15), "flood", "critical", "flood: 95 % full"),
        AlertMarker(at(20), "sensor_fault", "info", "echo lost"),
    ]
    fig = raw_figure([reading(0, 900.0), reading(15, 850.0)], alerts=alerts)
    warning = trace(fig, "warning alert")
    critical = trace(fig, "critical alert")
    info = trace(fig, "info alert")
    assert warning.yaxis == critical.yaxis == info.yaxis == "y"
    assert list(warning.y) == [325.0]  # half-way between the two readings
    assert list(critical.y) == [350.0]
    assert list(info.y) == [350.0]  # after the last reading: the last level
    assert list(warning.text) == ["rising (warning): rising 40 mm/h"]
    assert list(critical.text) == ["flood (critical): flood: 95 % full"]
    assert "%{text}" in warning.hovertemplate
    assert len({warning.marker.symbol, critical.marker.symbol, info.marker.symbol}) == 3


def test_rate_battery_and_signal_have_their_own_rows_and_axes() -> None:
    fig = raw_figure(
        [reading(0, 900.0, battery_v=3.61), reading(15, 880.0, battery_v=3.60)],
        radio=[RadioSample(at(0), 1, False, -112.0, 3.5, ["gw-1"]), RadioSample(at(15), 2, False, None, None, [])],
    )
    rate = trace(fig, "rate of rise")
    assert rate.yaxis == "y2"
    assert list(rate.y) == [None, 80.0]
    battery = trace(fig, "battery")
    assert battery.yaxis == "y3"
    assert list(battery.y) == [3.61, 3.60]
    signal = trace(fig, "signal (RSSI)")
    assert signal.yaxis == "y4"
    assert list(signal.y) == [-112.0]
    assert fig.layout.yaxis4.overlaying == "y3"
    assert fig.layout.yaxis4.title.text == "signal RSSI (dBm)"
    assert fig.layout.yaxis3.title.text == "battery (V)"
    assert fig.layout.yaxis2.title.text == "rate of rise (mm/h)"
    assert "mm" in fig.layout.yaxis.title.text


def test_signal_is_optional() -> None:
    fig = raw_figure([reading(0, 900.0)])
    assert "signal (RSSI)" not in [t.name for t in fig.data]
    assert "battery" not in [t.name for t in fig.data]


def test_the_line_breaks_where_the_readings_stop() -> None:
    readings = [reading(m, 900.0) for m in (0, 15, 30)] + [reading(m, 700.0) for m in (300, 315)]
    fig = raw_figure(readings)
    level = trace(fig, "water level")
    assert list(level.y) == [300.0, 300.0, 300.0, None, 500.0, 500.0]
    rate = trace(fig, "rate of rise")
    assert None in list(rate.y)[1:]  # the 200 mm over 4.5 h is not a rate anyone measured
    assert 200.0 / 4.5 not in list(rate.y)


def test_times_are_shown_in_utc_and_axes_are_shared_and_titled() -> None:
    bst = timezone(timedelta(hours=1))
    fig = raw_figure(
        [reading(0, 900.0)], start=datetime(2024, 6, 1, 1, 0, tzinfo=bst), end=datetime(2024, 6, 1, 7, 0, tzinfo=bst)
    )
    assert list(fig.layout.xaxis3.range) == ["2024-06-01 00:00:00", "2024-06-01 06:00:00"]
    assert fig.layout.xaxis3.title.text == "time (UTC)"
    assert fig.layout.xaxis.matches == fig.layout.xaxis2.matches == "x3"
    assert fig.layout.title.text == "Gully 1, High Street"


def test_uirevision_keeps_zoom_across_refreshes() -> None:
    assert raw_figure([], uirevision="gully-1:7d").layout.uirevision == "gully-1:7d"
    assert raw_figure([]).layout.uirevision == "Gully 1, High Street"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        raw_figure([], start=datetime(2024, 1, 1), end=datetime(2024, 1, 2))  # noqa: DTZ001


def test_readings_and_buckets_together_are_refused() -> None:
    bucket = Bucket(T0, 1, {"distance_mm": Stats(900.0, 900.0, 900.0, 1)})
    with pytest.raises(ValueError, match="not both"):
        raw_figure([reading(0, 900.0)], buckets=[bucket], bucket_width=timedelta(hours=1))
    with pytest.raises(ValueError, match="bucket_width"):
        raw_figure([], buckets=[bucket])


# --- buckets ----------------------------------------------------------------------------------------


def storm_buckets() -> list[Bucket]:
    """Five daily buckets; on day 2 a half-hour storm took the distance down to 150 mm (level 1050)."""
    days = []
    for day in range(5):
        low = 150.0 if day == 2 else 880.0
        days.append(
            Bucket(
                T0 + timedelta(days=day),
                96,
                {"distance_mm": Stats(low, 920.0, 895.0, 96), "battery_v": Stats(3.5, 3.6, 3.55 - day / 100, 96)},
            )
        )
    return days


def bucket_figure(buckets: list[Bucket], **kw: Any) -> go.Figure:
    return raw_figure([], buckets=buckets, bucket_width=timedelta(days=1), end=T0 + timedelta(days=5), **kw)


def test_bucketed_band_holds_each_buckets_extremes_so_a_peak_is_never_hidden() -> None:
    fig = bucket_figure(storm_buckets())
    mean = trace(fig, "mean water level")
    band = trace(fig, "min–max in each interval")
    assert max(mean.y) == pytest.approx(H - 895.0)  # the mean alone: 305 mm, a dry week
    ys = [y for y in band.y if y is not None]
    assert max(ys) == H - 150.0  # the storm peak: 1050 mm, above the critical line
    assert min(ys) == H - 920.0
    assert band.fill == "toself"
    # one closed outline: along the highs, back along the lows
    assert list(band.y) == [320.0, 320.0, 1050.0, 320.0, 320.0] + [280.0] * 5
    # points sit at the middle of their bucket
    assert mean.x[0] == text(T0 + timedelta(hours=12))
    assert list(mean.customdata[2]) == [H - 920.0, H - 150.0, 96]
    assert list(trace(fig, "battery").y) == pytest.approx([3.55, 3.54, 3.53, 3.52, 3.51])


def test_bucketed_band_breaks_at_missing_buckets() -> None:
    buckets = storm_buckets()
    fig = bucket_figure(buckets[:1] + buckets[4:])  # three silent days between
    band = trace(fig, "min–max in each interval")
    assert None in list(band.y)
    assert None in list(trace(fig, "mean water level").y)


def test_buckets_without_distance_are_left_out() -> None:
    fig = bucket_figure([Bucket(T0, 3, {"battery_v": Stats(3.5, 3.6, 3.55, 3)})])
    assert "mean water level" not in [t.name for t in fig.data]
    assert [a.text for a in fig.layout.annotations] == ["no readings in this range"]


# --- empty and JSON ---------------------------------------------------------------------------------


def test_no_readings_gives_an_empty_chart_that_says_so() -> None:
    fig = raw_figure([], alerts=[])
    assert fig.data == ()
    assert [a.text for a in fig.layout.annotations] == ["no readings in this range"]
    assert list(fig.layout.xaxis3.range) == [text(T0), text(at(360))]
    assert shape(fig, "warning").y0 == 800.0  # the gully's lines still show where trouble starts


def test_alert_with_no_readings_sits_on_the_warning_line() -> None:
    fig = raw_figure([], alerts=[AlertMarker(at(5), "offline", "warning", "no uplink for 6 h")])
    assert list(trace(fig, "warning alert").y) == [800.0]


@pytest.mark.parametrize("kind", ["raw", "buckets", "empty"])
def test_figures_serialise_to_plain_json(kind: str) -> None:
    fig = {
        "raw": lambda: raw_figure(
            [reading(0, 900.0, battery_v=3.6)],
            alerts=[AlertMarker(at(0), "flood", "critical", "<b>x</b>")],
            radio=[RadioSample(at(0), 1, False, -100.0, 1.0, [])],
        ),
        "buckets": lambda: bucket_figure(storm_buckets()),
        "empty": lambda: raw_figure([]),
    }[kind]()
    doc = json.loads(fig.to_json())
    assert doc["data"] or kind == "empty"
    assert "bdata" not in fig.to_json()  # no numpy typed arrays: plain lists a page can read
