"""What every figure shares: the colours, UTC time text, the "no data" note, and the WCAG contrast check.

Colours are picked for people first: every one reaches 3:1 against the white background (WCAG 2.2
non-text contrast, 1.4.11), and the series colours follow Okabe & Ito's colour-blind-safe set, darkened
where the original is too pale on white. Nothing relies on colour alone: the figures add text, line
dashes or marker shapes beside it.

plotly.js has no time zones: it shows a date string as written, whatever offset it carries. So times
go to the browser as naive UTC text, and the axes say "UTC".

Figures are built as plain dicts and wrapped by `figure` without plotly's property validation, which
costs more than everything else on a page: 30 ms of the overview's 1,000-gully map, against 2 ms for
the same figure unvalidated. The unit tests validate every figure instead
(tests/unit/dashboard/figures/test_valid.py), so a misspelt property still fails, in CI not per request.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.json import to_json_plotly

#: The page background every contrast is measured against.
BACKGROUND = "#ffffff"
#: Plain figures: white, light grid, nothing fetched (plotly's templates ship with the package).
TEMPLATE = "plotly_white"

BLUE = "#0072B2"  # Okabe-Ito blue
VERMILLION = "#D55E00"  # Okabe-Ito vermillion
GREEN = "#117733"  # Tol's green (Okabe-Ito's bluish green is 3.4:1, too close to the limit as a thin line)
PURPLE = "#AA4499"  # Tol's purple
DARK_RED = "#A50026"
GREY = "#595959"
BAND = "rgba(0, 114, 178, 0.22)"  # BLUE, translucent: an area behind its own line, not a mark of its own


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of a `#rrggbb` colour, 0 (black) to 1 (white)."""
    text = colour.removeprefix("#")
    if len(text) != 6:
        raise ValueError(f"not a #rrggbb colour: {colour!r}")
    r, g, b = (_channel(int(text[i : i + 2], 16)) for i in (0, 2, 4))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(colour: str, background: str = BACKGROUND) -> float:
    """WCAG contrast ratio of two `#rrggbb` colours, 1 (none) to 21 (black on white)."""
    light, dark = sorted((relative_luminance(colour), relative_luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def utc_text(t: datetime) -> str:
    """`t` as naive UTC ISO text for plotly.js (which would show an offset's local clock time as UTC).
    A naive datetime is refused: its zone is unknown, and guessing would shift the chart."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t.isoformat()}: pass an aware (UTC) time")
    return t.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


@functools.cache
def _template() -> dict[str, Any]:
    return pio.templates[TEMPLATE].to_plotly_json()  # type: ignore[no-any-return]


def figure(data: Sequence[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """A figure of plain trace and layout dicts (each trace naming its `type`) in TEMPLATE, unvalidated
    (see the module's docstring)."""
    return go.Figure({"data": list(data), "layout": {"template": _template(), **layout}}, _validate=False)


def figure_json(fig: go.Figure) -> str:
    """`fig` as JSON for the page's plotly.js, safe inside a `<script>` element (plotly escapes `</`
    and the like). `Figure.to_json` first deep-copies the whole figure (4 ms of the 1,000-gully map);
    this encodes the figure's own data and layout as they are (0.9 ms), and keeps the traces' uids.
    tests/unit/dashboard/figures/test_valid.py checks it says what `to_json` does."""
    return str(to_json_plotly({"data": fig._data, "layout": fig._layout}))


def no_data(text: str) -> dict[str, Any]:
    """A centred note (an annotation) saying why the figure is empty, so an empty chart never looks like
    a broken one."""
    return {
        "text": text,
        "name": "no-data",
        "xref": "paper",
        "yref": "paper",
        "x": 0.5,
        "y": 0.5,
        "showarrow": False,
        "font": {"size": 16, "color": GREY},
    }


__all__ = [
    "BACKGROUND",
    "BAND",
    "BLUE",
    "DARK_RED",
    "GREEN",
    "GREY",
    "PURPLE",
    "TEMPLATE",
    "VERMILLION",
    "contrast_ratio",
    "figure",
    "figure_json",
    "no_data",
    "relative_luminance",
    "utc_text",
]
