"""The flood-risk map: every gully as a marker coloured and shaped by its state.

It must work with no internet. Without a tile server it is a plain `go.Scatter` of longitude against
latitude (equirectangular: the latitude axis stretched by 1/cos(mean latitude), so a street's lengths
look right at town scale); no geo layout, whose basemap plotly.js would fetch from a CDN. With a
council's own XYZ tile server it is a MapLibre map (`go.Scattermap`) whose style has that raster source
and nothing else: no style, sprite or font from anywhere else.

States never rely on colour alone: each has a legend entry in words, a marker shape, and hover text.
`STATE_STYLE` holds the colour and a matching Unicode shape so the page's table shows the same key.
MapLibre draws only circles unless the style brings an icon sprite (which a bare tile server does not),
so on the tile map the shapes give way to circles sized by urgency; the legend and hover still name
the state, and the plain map keeps the shapes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import plotly.graph_objects as go

from dashboard.figures.style import GREY, figure, no_data


@dataclass(frozen=True, slots=True)
class StateStyle:
    """How one state looks: its words, colour (>= 3:1 on white), plotly marker symbol, the same shape
    as a Unicode character (for tables and text), and marker size (more urgent, larger)."""

    label: str
    colour: str
    symbol: str
    shape: str
    size: int


#: Most urgent first: the legend's order and the order a table should sort by.
STATE_STYLE: Mapping[str, StateStyle] = MappingProxyType(
    {
        "flooding": StateStyle("Flooding", "#A50026", "triangle-up", "▲", 18),
        "warning": StateStyle("Warning", "#B34700", "diamond", "◆", 16),
        "rising": StateStyle("Rising", "#8A5300", "star", "★", 16),
        "blockage": StateStyle("Suspected blockage", "#7B3294", "square", "■", 14),
        "sensor_fault": StateStyle("Sensor fault", "#AA4499", "x", "✕", 13),
        "offline": StateStyle("Offline", "#595959", "circle-open", "○", 12),
        "silting": StateStyle("Silting", "#0F7B6C", "triangle-down", "▼", 12),
        "normal": StateStyle("Normal", "#0072B2", "circle", "●", 10),
    }
)
STATES: tuple[str, ...] = tuple(STATE_STYLE)


@dataclass(frozen=True, slots=True)
class MapPoint:
    """One gully on the map. `state` is a key of STATE_STYLE; `state_label` says it for this gully
    (e.g. "warning: 78 % full"); `url` is its page, opened on click (the trace's customdata)."""

    device_id: str
    label: str
    latitude: float
    longitude: float
    state: str
    state_label: str
    url: str

    def __post_init__(self) -> None:
        if self.state not in STATE_STYLE:
            raise ValueError(f"unknown state {self.state!r}: one of {', '.join(STATES)}")


def tile_style(tiles_url: str) -> dict[str, Any]:
    """A MapLibre style whose only source is the council's raster tiles (so nothing else is fetched)."""
    return {
        "version": 8,
        "sources": {"tiles": {"type": "raster", "tiles": [tiles_url], "tileSize": 256}},
        "layers": [{"id": "tiles", "type": "raster", "source": "tiles"}],
    }


def _hover(p: MapPoint) -> str:
    """Device, state and label; escaped, since registry labels are typed by people."""
    return "<br>".join(html.escape(s) for s in (p.label, p.device_id, p.state_label))


def _by_state(points: Sequence[MapPoint]) -> list[tuple[str, list[MapPoint]]]:
    shown = [p for p in points if math.isfinite(p.latitude) and math.isfinite(p.longitude)]
    return [(s, [p for p in shown if p.state == s]) for s in STATES if any(p.state == s for p in shown)]


def _zoom(points: Sequence[MapPoint]) -> float:
    """A web-map zoom that fits the points in about 600 x 400 px: at zoom z MapLibre draws the world 512 * 2^z px
    wide, and a degree of latitude is 1/cos(latitude) times a degree of longitude (Web Mercator)."""
    if not points:
        return 15.0
    lons = [p.longitude for p in points]
    lats = [p.latitude for p in points]
    mean_lat = math.radians(sum(lats) / len(lats))
    zooms = [17.0]
    for span, px in ((max(lons) - min(lons), 600), ((max(lats) - min(lats)) / math.cos(mean_lat), 400)):
        if span > 0:
            zooms.append(math.log2(360 * px / 512 / span) - 0.3)
    return max(1.0, min(zooms))


def gully_map_figure(points: Sequence[MapPoint], tiles_url: str | None = None) -> go.Figure:
    """Gullies by state: a plain projection, or a tile map when `tiles_url` (an XYZ template) is given."""
    groups = _by_state(points)
    shown = [p for _, ps in groups for p in ps]
    traces = []
    for rank, (state, ps) in enumerate(groups):
        style = STATE_STYLE[state]
        trace: dict[str, Any] = {
            "name": f"{style.shape} {style.label} ({len(ps)})",
            "uid": state,
            "legendrank": rank + 1,
            "mode": "markers",
            "customdata": [p.url for p in ps],
            "text": [_hover(p) for p in ps],
            "hovertemplate": "%{text}<extra></extra>",
        }
        if tiles_url is None:
            line = style.colour if style.symbol.endswith("open") else "#ffffff"
            trace |= {
                "type": "scatter",
                "x": [p.longitude for p in ps],
                "y": [p.latitude for p in ps],
                "marker": {"symbol": style.symbol, "color": style.colour, "size": style.size,
                           "line": {"color": line, "width": 1}},
            }  # fmt: skip
        else:
            trace |= {
                "type": "scattermap",
                "lon": [p.longitude for p in ps],
                "lat": [p.latitude for p in ps],
                "marker": {"color": style.colour, "size": style.size},
            }
        traces.append(trace)
    layout: dict[str, Any] = {
        "title": {"text": "Gullies by state"},
        "uirevision": "gully-map",
        "legend": {"title": {"text": "state"}, "itemclick": "toggle"},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    }
    if tiles_url is None:
        mean_lat = sum(p.latitude for p in shown) / len(shown) if shown else 0.0
        axis = {"showgrid": False, "zeroline": False, "linecolor": GREY}
        layout["xaxis"] = {"title": {"text": "longitude (°)"}, **axis}
        layout["yaxis"] = {"title": {"text": "latitude (°)"}, **axis,
                           "scaleanchor": "x", "scaleratio": 1 / math.cos(math.radians(mean_lat))}  # fmt: skip
    else:
        lats = [p.latitude for p in shown] or [0.0]
        lons = [p.longitude for p in shown] or [0.0]
        layout["map"] = {
            "style": tile_style(tiles_url),
            "center": {"lat": (min(lats) + max(lats)) / 2, "lon": (min(lons) + max(lons)) / 2},
            "zoom": _zoom(shown),
        }
    if not shown:
        layout["annotations"] = [no_data("no gullies with a location to show")]
    return figure(traces, layout)


__all__ = ["STATES", "STATE_STYLE", "MapPoint", "StateStyle", "gully_map_figure", "tile_style"]
