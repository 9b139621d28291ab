"""The flood-risk overview: every gully on a map, coloured and shaped by its state, and a table of
them sorted by risk (latest level and fill %, trend, battery, last seen), open alerts on top.

It refreshes itself: the page's script fetches `/overview/live` every few seconds and swaps the
table, the counts and the alerts in place, and redraws the map's points keeping its zoom. One query
(store/overview.py) gives every gully's latest state, so a refresh of 1,000 gullies stays well under
the 100 ms target (benchmarks/dashboard.py measures it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from dashboard.api.rules import rules_in_force
from dashboard.figures.map import STATE_STYLE, MapPoint, gully_map_figure
from dashboard.figures.style import figure_json
from dashboard.gully_state import GullyState, classify, flood_levels, sort_key
from dashboard.pages.formats import ago, iso, number, trend, utc
from dashboard.pages.web import PageContext, for_roles, fragment, render
from dashboard.state import app_state
from store import alert_views
from store.alert_views import ShownAlert
from store.overview import GullyStatus, gully_overview

router = APIRouter(include_in_schema=False)

_SEVERITY = {"critical": 0, "warning": 1, "info": 2}
#: How many open alerts the top of the page lists (the inbox has them all).
TOP_ALERTS = 12


@dataclass(frozen=True, slots=True)
class Row:
    status: GullyStatus
    state: GullyState
    url: str

    @property
    def low_battery(self) -> bool:
        return any(a.category == "battery_low" for a in self.status.open_alerts)


def _rows(page: PageContext, now: datetime) -> list[Row]:
    levels = flood_levels(rules_in_force(page.request))
    rows = []
    for status in gully_overview(page.conn):
        url = f"/gullies/{quote(status.device_id, safe='')}"
        rows.append(Row(status, classify(status, levels, now), url))
    rows.sort(key=lambda r: sort_key(r.status, r.state))
    return rows


def table_rows(rows: list[Row], now: datetime) -> Markup:
    """The table's rows, written here rather than in the template: at 1,000 gullies Jinja's fifteen
    look-ups and escapes a row took 20 ms of the page, these f-strings 6 (benchmarks/dashboard.py).
    Everything typed by people (names, ids, labels) is escaped; the rest is our own text."""
    out = []
    for r in rows:
        g, st = r.status, STATE_STYLE[r.state.state]
        device = escape(g.device_id)
        name = f'{escape(g.name)}</a> <span class="muted">{device}</span>' if g.name else f"{device}</a>"
        low = ' <span class="badge sev-warning">low</span>' if r.low_battery else ""
        out.append(
            f'<tr data-device="{device}" data-state="{r.state.state}">'
            f'<td><a href="{escape(r.url)}">{name}</td>'
            f'<td><span class="state" style="color: {st.colour}"><span class="shape" aria-hidden="true">{st.shape}'
            f'</span><span class="state-text">{escape(r.state.label)}</span></span></td>'
            f'<td class="num">{number(g.level_mm, 0, "mm")}</td><td class="num">{number(g.fill_pct, 0, "%")}</td>'
            f'<td>{trend(g.trend_mm_per_h)}</td><td class="num">{number(g.battery_v, 2, "V")}{low}</td>'
            f'<td><time datetime="{iso(g.last_seen)}" title="{utc(g.last_seen)}">{ago(g.last_seen, now)}</time></td>'
            "</tr>\n"
        )
    return Markup("".join(out))  # noqa: S704 - built from escaped values and our own text, above


def _top_alerts(page: PageContext) -> list[ShownAlert]:
    shown = [s for s in alert_views.alerts(page.conn, state="open", limit=200) if not s.care]
    shown.sort(
        key=lambda s: (_SEVERITY.get(s.alert.severity, 3), s.alert.state != "firing", -s.alert.opened_at.timestamp())
    )
    return shown[:TOP_ALERTS]


def _values(page: PageContext) -> dict[str, Any]:
    now = page.now
    rows = _rows(page, now)
    points = [
        MapPoint(
            device_id=r.status.device_id,
            label=r.status.name or r.status.device_id,
            latitude=r.status.latitude,
            longitude=r.status.longitude,
            state=r.state.state,
            state_label=r.state.label,
            url=r.url,
        )
        for r in rows
        if r.status.latitude is not None and r.status.longitude is not None
    ]
    figure = gully_map_figure(points, tiles_url=app_state(page.request).settings.map_tiles_url)
    counts = Counter(r.state.state for r in rows)
    return {
        "rows": rows,
        "table_rows": table_rows(rows, now),
        "counts": [(state, style, counts.get(state, 0)) for state, style in STATE_STYLE.items()],
        "alerts": _top_alerts(page),
        "map_json": figure_json(figure),
        "unmapped": len(rows) - len(points),
        "now": now,
    }


OverviewPage = Annotated[PageContext, for_roles("admin", "highways")]


@router.get("/overview")
def overview(page: OverviewPage) -> HTMLResponse:
    return render(page, "overview.html", **_values(page))


@router.get("/overview/live")
def overview_live(page: OverviewPage) -> HTMLResponse:
    return fragment(page.request, "_overview_live.html", **_values(page))
