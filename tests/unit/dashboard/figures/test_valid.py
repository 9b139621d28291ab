"""Every figure is valid plotly, and exactly what plotly's validation would have made of it.

The figures are built unvalidated (dashboard/figures/style.py: validation costs more than the rest of a
page), so this is where a misspelt property, a wrong value type or a value plotly would coerce (a named
colour scale, say) is caught: each builder's figure, in each of its shapes, is rebuilt through the
validating `go.Figure` (which raises on anything invalid) and must come out the same JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import plotly.graph_objects as go
import pytest

from dashboard.figures import (
    ActivityCell,
    AlertMarker,
    MapPoint,
    ack_time_figure,
    activity_heatmap_figure,
    gully_level_figure,
    gully_map_figure,
)
from dashboard.figures.style import figure_json
from store.radio import RadioSample
from store.reading_series import Bucket, Stats
from store.records import Reading

T0 = datetime(2024, 12, 3, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def readings(battery: bool) -> list[Reading]:
    return [
        Reading(1, "g1", "app", at(15 * i), distance_mm=900.0 - 5 * i, battery_v=3.6 if battery else None)
        for i in range(20)
    ] + [Reading(1, "g1", "app", at(15 * 30), distance_mm=890.0, distance_valid=False)]


BUCKETS = [
    Bucket(
        T0 + timedelta(days=d),
        96,
        {"distance_mm": Stats(600.0, 920.0, 890.0, 96), "battery_v": Stats(3.5, 3.6, 3.55, 96)},
    )
    for d in (0, 1, 2, 6)
]
RADIO = [RadioSample(at(15 * i), i, False, -110.0 + i, 4.0, ["gw-1"]) for i in range(10)]
ALERTS = [
    AlertMarker(at(60), "flood", "critical", "over 80 % full"),
    AlertMarker(at(90), "blockage", "warning", "not draining"),
    AlertMarker(at(120), "sensor_fault", "odd", "no echo"),
]
LEVEL: dict[str, Any] = {"start": T0, "end": at(24 * 60 * 7), "sensor_height_mm": 1200.0, "outlet_invert_mm": 400.0,
         "warning_mm": 800.0, "critical_mm": 1040.0}  # fmt: skip
STATES = ("flooding", "warning", "rising", "blockage", "sensor_fault", "offline", "silting", "normal")
POINTS = [MapPoint(f"g{i}", f"Gully <{i}>", 52.6 + i / 1000, 1.29 + i / 1000, s, s, f"/gullies/g{i}")
          for i, s in enumerate(STATES)]  # fmt: skip
CELLS = [ActivityCell(date(2024, 12, 2), 7, 5), ActivityCell(date(2024, 12, 3), 23, 1)]

BUILDERS: dict[str, Callable[[], go.Figure]] = {
    "map, plain": lambda: gully_map_figure(POINTS),
    "map, tiles": lambda: gully_map_figure(POINTS, tiles_url="https://tiles.invalid/{z}/{x}/{y}.png"),
    "map, empty": lambda: gully_map_figure([]),
    "level, raw with battery, radio and alerts": lambda: gully_level_figure(
        "Gully 1", readings=readings(True), radio=RADIO, alerts=ALERTS, **LEVEL
    ),
    "level, raw with radio only": lambda: gully_level_figure("Gully 1", readings=readings(False), radio=RADIO, **LEVEL),
    "level, bucketed": lambda: gully_level_figure(
        "Gully 1", buckets=BUCKETS, bucket_width=timedelta(days=1), alerts=ALERTS, **LEVEL
    ),
    "level, empty": lambda: gully_level_figure("Gully 1", **LEVEL),
    "heatmap": lambda: activity_heatmap_figure("Kitchen", CELLS, [date(2024, 12, 2), date(2024, 12, 3)]),
    "heatmap, empty": lambda: activity_heatmap_figure("Kitchen", [], []),
    "acks": lambda: ack_time_figure([5.0, 12.0, 30.0, 75.0, 400.0]),
    "acks, empty": lambda: ack_time_figure([]),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_figure_is_what_validation_would_make_of_it(name: str) -> None:
    fig = BUILDERS[name]()
    shipped = json.loads(fig.to_json())
    validated = go.Figure(fig.to_plotly_json())  # raises ValueError on any invalid property or value
    assert json.loads(validated.to_json()) == shipped
    assert shipped["data"] or shipped["layout"]["annotations"], "an empty figure says why"
    fast = json.loads(figure_json(fig))
    for trace in fast["data"]:
        trace.pop("uid", None)  # to_json leaves them out
    assert fast == shipped


def test_figure_json_is_safe_inside_a_script_element() -> None:
    hostile = MapPoint("g</script>", "</script>", 52.0, 1.0, "normal", "x", "/")
    assert "</" not in figure_json(gully_map_figure([hostile]))


def test_an_invalid_property_would_be_caught() -> None:
    """The check above can fail: validation refuses what the unvalidated figure lets through."""
    fig = gully_map_figure(POINTS)
    broken = fig.to_plotly_json()
    broken["data"][0]["marker"]["symbl"] = "circle"
    with pytest.raises(ValueError, match="symbl"):
        go.Figure(broken)
