"""A care flat's activity heatmap: movements per hour of day (x, 0-23) by day (y), one figure per room.

Carers read it for routine and its breaks: a morning that started late, a restless night, a day with
no kitchen visits. A missing cell is an hour with no movement (0), not a hole, so silence shows as
silence. The colour scale is cividis, reversed: its lightness rises steadily (it reads the same in
greyscale and to colour-blind eyes), and an empty hour is the lightest, busy hours the darkest.

The figure names the room only (the caller's label, never a resident); the days and the hours are in
whatever zone the caller counted them in, named by `tz_name`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import plotly.graph_objects as go
from plotly.colors import get_colorscale

from dashboard.figures.style import figure, no_data

HOURS: tuple[int, ...] = tuple(range(24))
#: Low (empty) is light, high is dark; lightness is monotonic along it (tested).
COLOURSCALE: list[list[float | str]] = get_colorscale("cividis")  # as [position, colour]s: figures are unvalidated
REVERSE_SCALE = True
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # fixed English: never the server's locale
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class ActivityCell:
    """Movements counted in one room in hour `hour` (0-23) of `day`."""

    day: date
    hour: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.hour <= 23:
            raise ValueError(f"hour {self.hour} is not 0-23")
        if self.count < 0:
            raise ValueError(f"a count cannot be negative: {self.count}")


def day_text(d: date) -> str:
    """`Mon 3 Dec`: short, and the same in any locale."""
    return f"{_DAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]}"


def _movements(n: int) -> str:
    return f"{n} movement" if n == 1 else f"{n} movements"


def activity_grid(cells: Sequence[ActivityCell], days: Sequence[date]) -> list[list[int]]:
    """Counts as rows of 24 hours, one row per day in `days` order; missing cells are 0, repeated
    cells add up, and cells of other days are left out."""
    row_of = {d: i for i, d in enumerate(days)}
    grid = [[0] * len(HOURS) for _ in days]
    for c in cells:
        i = row_of.get(c.day)
        if i is not None:
            grid[i][c.hour] += c.count
    return grid


def activity_heatmap_figure(
    room: str, cells: Sequence[ActivityCell], days: Sequence[date], *, tz_name: str = "UTC"
) -> go.Figure:
    """One room's heatmap over `days` (earliest at the top, like a calendar)."""
    days = sorted(set(days))
    grid = activity_grid(cells, days)
    labels = [d.isoformat() for d in days]
    hover = [
        [f"{day_text(d)}, {h:02d}:00–{(h + 1) % 24:02d}:00: {_movements(grid[i][h])}" for h in HOURS]
        for i, d in enumerate(days)
    ]
    heatmap = {
        "type": "heatmap",
        "x": list(HOURS),
        "y": labels,
        "z": grid,
        "text": hover,
        "hovertemplate": "%{text}<extra></extra>",
        "colorscale": COLOURSCALE,
        "reversescale": REVERSE_SCALE,
        "zmin": 0,
        "xgap": 1,
        "ygap": 1,
        "colorbar": {"title": {"text": "movements per hour"}},
        "name": room,
    }
    layout: dict[str, Any] = {
        "title": {"text": f"Activity: {room}"},
        "uirevision": f"activity:{room}",
        "plot_bgcolor": "#ffffff",
        "xaxis": {
            "title": {"text": f"hour of day ({tz_name})"},
            "tickmode": "array",
            "tickvals": list(HOURS),
            "ticktext": [f"{h:02d}" for h in HOURS],
            "range": [-0.5, 23.5],
            "showgrid": False,
        },
        "yaxis": {
            "title": {"text": "day"},
            "type": "category",
            "tickmode": "array",
            "tickvals": labels,
            "ticktext": [day_text(d) for d in days],
            "autorange": "reversed",
            "showgrid": False,
        },
    }
    if not days:
        layout["annotations"] = [no_data("no days in this range")]
    return figure([heatmap] if days else [], layout)


def activity_heatmaps(
    rooms: Mapping[str, Sequence[ActivityCell]], days: Sequence[date], *, tz_name: str = "UTC"
) -> list[tuple[str, go.Figure]]:
    """A heatmap per room, in the mapping's order."""
    return [(room, activity_heatmap_figure(room, cells, days, tz_name=tz_name)) for room, cells in rooms.items()]


__all__ = ["HOURS", "ActivityCell", "activity_grid", "activity_heatmap_figure", "activity_heatmaps", "day_text"]
