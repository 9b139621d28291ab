"""The flood-risk map: one trace per state, in urgency order, each with its own shape and a colour that
stands out on white; a plain projection with no tiles, and with tiles nothing fetched but those tiles."""

from __future__ import annotations

import json
import math
import re

import pytest

from dashboard.figures.map import STATE_STYLE, STATES, MapPoint, gully_map_figure, tile_style
from dashboard.figures.style import contrast_ratio, relative_luminance

TILES = "https://tiles.example/{z}/{x}/{y}.png"


def point(i: int, state: str, lat: float = 52.10, lon: float = -1.20, label: str = "High Street") -> MapPoint:
    return MapPoint(
        f"gully-{i}", label, lat + i * 0.001, lon + i * 0.001, state, f"{state} (gully {i})", f"/gullies/{i}"
    )


def urls(doc: object) -> set[str]:
    """Every string in a JSON document that names another place (plotly escapes "/" in to_json)."""
    if isinstance(doc, dict):
        return set().union(*(urls(v) for v in doc.values()), *(urls(k) for k in doc))
    if isinstance(doc, list):
        return set().union(*(urls(v) for v in doc))
    return {doc} if isinstance(doc, str) and re.search(r"://|^//", doc) else set()


def every_state() -> list[MapPoint]:
    # deliberately not in urgency order
    return [point(i, s) for i, s in enumerate(reversed(STATES))]


# --- the palette ------------------------------------------------------------------------------------


def test_contrast_ratio_matches_wcag() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast_ratio("#767676") == pytest.approx(4.54, abs=0.01)  # the classic AA grey
    assert contrast_ratio("#E69F00") < 3  # Okabe-Ito orange: too pale for a mark on white
    assert relative_luminance("#ffffff") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="rrggbb"):
        relative_luminance("red")


@pytest.mark.parametrize("state", STATES)
def test_every_state_colour_reaches_3_to_1_on_white(state: str) -> None:
    assert contrast_ratio(STATE_STYLE[state].colour) >= 3.0


def test_states_are_told_apart_by_shape_colour_and_words() -> None:
    styles = list(STATE_STYLE.values())
    assert len({s.symbol for s in styles}) == len(styles)
    assert len({s.shape for s in styles}) == len(styles)
    assert len({s.colour.lower() for s in styles}) == len(styles)
    assert len({s.label for s in styles}) == len(styles)
    assert all(len(s.shape) == 1 for s in styles)
    assert STATES == ("flooding", "warning", "rising", "blockage", "sensor_fault", "offline", "silting", "normal")


def test_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown state 'drowning'"):
        point(0, "drowning")


# --- plain projection -------------------------------------------------------------------------------


def test_one_trace_per_state_in_urgency_order_each_with_its_own_symbol() -> None:
    fig = gully_map_figure(every_state())
    assert [t.type for t in fig.data] == ["scatter"] * len(STATES)
    assert [t.uid for t in fig.data] == list(STATES)
    assert [t.legendrank for t in fig.data] == list(range(1, len(STATES) + 1))
    assert [t.marker.symbol for t in fig.data] == [STATE_STYLE[s].symbol for s in STATES]
    assert [t.marker.color for t in fig.data] == [STATE_STYLE[s].colour for s in STATES]
    assert fig.data[0].name == "▲ Flooding (1)"


def test_points_go_to_their_state_with_position_url_and_hover() -> None:
    pts = [point(1, "warning"), point(2, "normal"), point(3, "warning", label="Mill Lane <north> & co")]
    fig = gully_map_figure(pts)
    warning, normal = fig.data
    assert warning.uid == "warning" and normal.uid == "normal"
    assert list(warning.x) == [pts[0].longitude, pts[2].longitude]
    assert list(warning.y) == [pts[0].latitude, pts[2].latitude]
    assert list(warning.customdata) == ["/gullies/1", "/gullies/3"]
    assert warning.name == "◆ Warning (2)"
    hover = warning.text[1]
    assert "gully-3" in hover and "warning (gully 3)" in hover
    assert "Mill Lane &lt;north&gt; &amp; co" in hover  # a label is text, never markup
    assert "%{text}" in warning.hovertemplate


def test_plain_projection_scales_latitude_by_the_cosine_and_has_no_geo_or_map() -> None:
    fig = gully_map_figure([point(0, "normal", lat=60.0), point(1, "normal", lat=60.0)])
    mean_lat = 60.0005
    assert fig.layout.yaxis.scaleanchor == "x"
    assert fig.layout.yaxis.scaleratio == pytest.approx(1 / math.cos(math.radians(mean_lat)))
    assert fig.layout.yaxis.scaleratio == pytest.approx(2.0, abs=0.001)  # at 60° N a degree of longitude is half
    assert fig.layout.xaxis.showgrid is False and fig.layout.yaxis.showgrid is False
    assert "longitude" in fig.layout.xaxis.title.text
    assert "latitude" in fig.layout.yaxis.title.text
    doc = fig.to_plotly_json()
    assert "geo" not in doc["layout"] and "map" not in doc["layout"] and "mapbox" not in doc["layout"]


def test_points_without_a_finite_position_are_left_out() -> None:
    fig = gully_map_figure([point(0, "normal"), point(1, "flooding", lat=math.nan)])
    assert [t.uid for t in fig.data] == ["normal"]


def test_no_points_says_so() -> None:
    fig = gully_map_figure([])
    assert fig.data == ()
    assert [a.text for a in fig.layout.annotations] == ["no gullies with a location to show"]
    assert fig.layout.uirevision == "gully-map"


# --- with tiles -------------------------------------------------------------------------------------


def test_tiles_give_a_maplibre_map_whose_only_source_is_the_councils_tiles() -> None:
    fig = gully_map_figure(every_state(), tiles_url=TILES)
    assert [t.type for t in fig.data] == ["scattermap"] * len(STATES)
    assert [t.uid for t in fig.data] == list(STATES)
    assert list(fig.data[0].customdata) == ["/gullies/7"]
    style = fig.layout.map.style
    assert style == tile_style(TILES)
    assert list(style["sources"]) == ["tiles"]
    assert style["sources"]["tiles"] == {"type": "raster", "tiles": [TILES], "tileSize": 256}
    assert "glyphs" not in style and "sprite" not in style
    doc = fig.to_plotly_json()
    assert "mapbox" not in doc["layout"] and "geo" not in doc["layout"]
    # nothing else a browser could be sent to fetch
    assert urls(json.loads(fig.to_json())) == {TILES}
    # centred on the points, zoomed to town scale
    lats = [p.latitude for p in every_state()]
    assert fig.layout.map.center.lat == pytest.approx((min(lats) + max(lats)) / 2)
    assert 12 < fig.layout.map.zoom < 18


def test_without_tiles_there_is_no_tile_style() -> None:
    fig = gully_map_figure(every_state())
    assert "map" not in fig.to_plotly_json()["layout"]
    assert urls(json.loads(fig.to_json())) == set()


def test_tile_map_zooms_out_for_a_county() -> None:
    town = gully_map_figure([point(0, "normal"), point(1, "normal")], tiles_url=TILES).layout.map.zoom
    county = gully_map_figure([point(0, "normal"), point(500, "normal")], tiles_url=TILES).layout.map.zoom
    assert county < town


@pytest.mark.parametrize("tiles", [None, TILES])
def test_map_serialises_to_plain_json(tiles: str | None) -> None:
    text = gully_map_figure(every_state(), tiles_url=tiles).to_json()
    assert len(json.loads(text)["data"]) == len(STATES)
    assert "bdata" not in text
