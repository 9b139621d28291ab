"""The activity heatmap: every hour of every day shown (silence as 0), hours 0-23 across, days down,
a colour scale that reads in greyscale, and hover text a carer can read aloud."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from dashboard.figures.heatmap import ActivityCell, activity_heatmap_figure, activity_heatmaps, day_text
from dashboard.figures.style import relative_luminance

DAY = date(2024, 12, 2)  # a Monday
DAYS = [DAY + timedelta(days=i) for i in range(3)]


def test_missing_cells_are_zero_and_counts_land_in_their_hour_and_day() -> None:
    cells = [ActivityCell(DAY, 7, 5), ActivityCell(DAY + timedelta(days=2), 23, 2), ActivityCell(DAY, 7, 1)]
    heat = activity_heatmap_figure("Kitchen", cells, DAYS).data[0]
    z = [list(row) for row in heat.z]
    assert len(z) == 3 and all(len(row) == 24 for row in z)
    assert z[0][7] == 6  # repeated cells add up
    assert z[2][23] == 2
    assert sum(map(sum, z)) == 8
    assert z[1] == [0] * 24  # a silent day is a row of zeros, not a missing row


def test_hour_axis_is_0_to_23_and_days_run_down_the_side() -> None:
    fig = activity_heatmap_figure("Kitchen", [], DAYS)
    heat = fig.data[0]
    assert list(heat.x) == list(range(24))
    assert list(fig.layout.xaxis.tickvals) == list(range(24))
    assert list(fig.layout.xaxis.ticktext)[:2] == ["00", "01"] and fig.layout.xaxis.ticktext[-1] == "23"
    assert list(fig.layout.xaxis.range) == [-0.5, 23.5]
    assert fig.layout.xaxis.title.text == "hour of day (UTC)"
    assert list(heat.y) == ["2024-12-02", "2024-12-03", "2024-12-04"]
    assert list(fig.layout.yaxis.ticktext) == ["Mon 2 Dec", "Tue 3 Dec", "Wed 4 Dec"]
    assert fig.layout.yaxis.type == "category"
    assert fig.layout.yaxis.autorange == "reversed"  # earliest day on top, like a calendar


def test_days_are_shown_in_order_once_and_other_days_cells_are_left_out() -> None:
    fig = activity_heatmap_figure("Hall", [ActivityCell(DAY - timedelta(days=1), 3, 9)], [DAYS[2], DAYS[0], DAYS[2]])
    heat = fig.data[0]
    assert list(heat.y) == ["2024-12-02", "2024-12-04"]
    assert sum(map(sum, heat.z)) == 0


def test_hover_text_names_day_hour_and_count() -> None:
    cells = [ActivityCell(date(2024, 12, 3), 14, 12), ActivityCell(date(2024, 12, 3), 15, 1)]
    heat = activity_heatmap_figure("Kitchen", cells, [date(2024, 12, 3)]).data[0]
    assert heat.text[0][14] == "Tue 3 Dec, 14:00–15:00: 12 movements"
    assert heat.text[0][15] == "Tue 3 Dec, 15:00–16:00: 1 movement"
    assert heat.text[0][23] == "Tue 3 Dec, 23:00–00:00: 0 movements"
    assert heat.hovertemplate == "%{text}<extra></extra>"


def test_colour_scale_starts_at_zero_is_titled_and_its_lightness_is_monotonic() -> None:
    fig = activity_heatmap_figure("Kitchen", [ActivityCell(DAY, 1, 3)], DAYS)
    heat = fig.data[0]
    assert heat.zmin == 0
    assert heat.colorbar.title.text == "movements per hour"
    assert heat.reversescale is True
    scale = [colour for _, colour in heat.colorscale]
    lightness = [relative_luminance(c) for c in scale]
    # in greyscale the scale is one steady ramp: dark to light (reversed: an empty hour is lightest)
    assert lightness == sorted(lightness)
    assert lightness[-1] - lightness[0] > 0.5


def test_one_figure_per_room_named_by_room_only() -> None:
    rooms = {"Bedroom": [ActivityCell(DAY, 2, 4)], "Bathroom": []}
    figs = activity_heatmaps(rooms, DAYS)
    assert [room for room, _ in figs] == ["Bedroom", "Bathroom"]
    assert [f.layout.title.text for _, f in figs] == ["Activity: Bedroom", "Activity: Bathroom"]
    assert figs[0][1].data[0].z[0][2] == 4
    assert sum(map(sum, figs[1][1].data[0].z)) == 0
    assert figs[0][1].layout.uirevision != figs[1][1].layout.uirevision


def test_the_zone_is_named() -> None:
    fig = activity_heatmap_figure("Kitchen", [], DAYS, tz_name="Europe/London")
    assert fig.layout.xaxis.title.text == "hour of day (Europe/London)"


def test_no_days_says_so() -> None:
    fig = activity_heatmap_figure("Kitchen", [ActivityCell(DAY, 1, 1)], [])
    assert fig.data == ()
    assert [a.text for a in fig.layout.annotations] == ["no days in this range"]


@pytest.mark.parametrize(("hour", "count"), [(-1, 0), (24, 0), (3, -1)])
def test_impossible_cells_are_refused(hour: int, count: int) -> None:
    with pytest.raises(ValueError):
        ActivityCell(DAY, hour, count)


def test_day_text_is_english_whatever_the_locale() -> None:
    assert day_text(date(2024, 12, 8)) == "Sun 8 Dec"
    assert day_text(date(2025, 1, 1)) == "Wed 1 Jan"


def test_heatmap_serialises_to_plain_json() -> None:
    text = activity_heatmap_figure("Kitchen", [ActivityCell(DAY, 1, 3)], DAYS).to_json()
    assert json.loads(text)["data"][0]["z"][0][1] == 3
    assert "bdata" not in text
