"""Time to acknowledge against the careline target (UK standard: 98.5 % of calls answered within 60 s).

A cumulative curve answers the target's own question at a glance: read up from 60 s to see the share
answered by then, and compare with the target line. The share is also written out in words, rounded
down so the text never claims a target the numbers missed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from dashboard.figures.style import BLUE, DARK_RED, GREEN, GREY, figure, no_data

#: The curve shows up to this many target lengths at first (a three-hour outlier would hide the rest).
SHOWN_TARGETS = 10


def _finite(waits_s: Sequence[float]) -> list[float]:
    return sorted(max(0.0, w) for w in waits_s if math.isfinite(w))


def within_target(waits_s: Sequence[float], target_s: float) -> float | None:
    """Percent of waits at most `target_s` seconds (answered at the 60th second counts as within);
    None with no waits. Non-finite waits are not waits and are left out."""
    waits = _finite(waits_s)
    if not waits:
        return None
    return 100.0 * sum(1 for w in waits if w <= target_s) / len(waits)


def pct_text(pct: float) -> str:
    """One decimal, rounded down: 98.46 is "98.4 %", never "98.5 %"."""
    return f"{math.floor(pct * 10 + 1e-9) / 10:.1f} %"


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def ack_time_figure(waits_s: Sequence[float], target_s: float = 60, target_pct: float = 98.5) -> go.Figure:
    """Cumulative share acknowledged by each wait, with the target time and share as labelled lines."""
    waits = _finite(waits_s)
    target = f"{target_s:g} s target"
    shapes: list[dict[str, object]] = [
        {
            "type": "line",
            "name": "target time",
            "xref": "x",
            "yref": "y domain",
            "x0": target_s,
            "x1": target_s,
            "y0": 0,
            "y1": 1,
            "line": {"color": DARK_RED, "width": 2, "dash": "dash"},
            "label": {
                "text": target,
                "textposition": "end",
                "textangle": 0,
                "xanchor": "left",
                "yanchor": "top",
                "font": {"color": DARK_RED},
            },
        },
        {
            "type": "line",
            "name": "target share",
            "xref": "x domain",
            "yref": "y",
            "x0": 0,
            "x1": 1,
            "y0": target_pct,
            "y1": target_pct,
            "line": {"color": GREY, "width": 1.5, "dash": "dot"},
            "label": {
                "text": f"{target_pct:g} % standard",
                "textposition": "start",  # at the left: the target time's label is at the top right
                "yanchor": "top",
                "font": {"color": GREY},
            },
        },
    ]
    xaxis: dict[str, Any] = {"title": {"text": "seconds from alert to acknowledgement"}, "rangemode": "tozero"}
    layout: dict[str, Any] = {
        "title": {"text": "Time to acknowledge"},
        "uirevision": "ack-time",
        "shapes": shapes,
        "showlegend": False,
        "margin": {"t": 110},
        "xaxis": xaxis,
        "yaxis": {"title": {"text": "alerts acknowledged (%)"}, "range": [0, 102]},
    }
    pct = within_target(waits, target_s)
    if pct is None:
        layout["annotations"] = [no_data("no acknowledged alerts in this range")]
        return figure([], layout)
    n = len(waits)
    curve = {
        "type": "scatter",
        "x": [0.0, *waits],
        "y": [0.0, *(100.0 * (i + 1) / n for i in range(n))],
        "name": "acknowledged by then",
        "mode": "lines",
        "line": {"shape": "hv", "color": BLUE, "width": 2},
        "hovertemplate": "%{y:.1f} % acknowledged within %{x:.0f} s<extra></extra>",
    }
    met = pct >= target_pct
    within = sum(1 for w in waits if w <= target_s)
    layout["annotations"] = [
        {
            "name": "share within target",
            "text": (
                f"{pct_text(pct)} within {target_s:g} s ({within} of {n}): "
                f"{'meets' if met else 'below'} the {target_pct:g} % target<br>longest wait {_duration(waits[-1])}"
            ),
            # above the plot, under the title: inside it the text would cover the curve somewhere
            "xref": "paper",
            "yref": "paper",
            "x": 0,
            "y": 1.02,
            "xanchor": "left",
            "yanchor": "bottom",
            "showarrow": False,
            "align": "left",
            "font": {"size": 14, "color": GREEN if met else DARK_RED},
            "bgcolor": "#ffffff",
        }
    ]
    xaxis["range"] = [0, max(2 * target_s, min(waits[-1], SHOWN_TARGETS * target_s)) * 1.02]
    return figure([curve], layout)


__all__ = ["ack_time_figure", "pct_text", "within_target"]
