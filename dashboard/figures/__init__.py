"""The dashboard's plotly figures: pure functions, plain data in, a `plotly.graph_objects.Figure` out.

No I/O and no clock: the pages fetch through `store`, pass the data (and any "now") in, and embed
`fig.to_json()` for the locally served plotly.js. Nothing here needs the internet: no geo layouts
(their basemaps come from a CDN), no tokened map styles.
"""

from dashboard.figures.acks import ack_time_figure, within_target
from dashboard.figures.heatmap import ActivityCell, activity_heatmap_figure, activity_heatmaps
from dashboard.figures.level import AlertMarker, gully_level_figure, rate_of_rise, threshold_mm
from dashboard.figures.map import STATE_STYLE, STATES, MapPoint, StateStyle, gully_map_figure

__all__ = [
    "STATES",
    "STATE_STYLE",
    "ActivityCell",
    "AlertMarker",
    "MapPoint",
    "StateStyle",
    "ack_time_figure",
    "activity_heatmap_figure",
    "activity_heatmaps",
    "gully_level_figure",
    "gully_map_figure",
    "rate_of_rise",
    "threshold_mm",
    "within_target",
]
