"""The care pages: the flats (one per resident: `care_group`), and one flat's activity heatmap per
room (hour of day by day) with its event timeline — falls, bathroom visits, nights up, and alerts.

No resident names: a flat is its care_group and a room its care_room (nothing in the registry holds
a person's name). Every view is audited with ids only. Care and admin only; highways cannot open them,
and row-level security would show it nothing if it could.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from dashboard.figures.heatmap import ActivityCell, activity_heatmaps
from dashboard.figures.style import figure_json
from dashboard.pages.web import PageContext, PageError, for_roles, render
from store import care_views

router = APIRouter(include_in_schema=False)

CarePage = Annotated[PageContext, for_roles("admin", "care")]
DAYS = (7, 14, 28)


@router.get("/care")
def flats(page: CarePage) -> HTMLResponse:
    listed = care_views.flats(page.conn)
    if listed:
        page.audit("care_flats_listed", None, {"care_groups": [f.care_group for f in listed]})
    return render(page, "care_flats.html", flats=listed)


@router.get("/care/flats/{care_group}")
def flat(
    page: CarePage,
    care_group: Annotated[str, Path(pattern=r"^[A-Za-z0-9._:@ -]{1,128}$")],
    days: Annotated[int, Query(ge=1, le=28)] = 7,
) -> HTMLResponse:
    devices = care_views.flat_devices(page.conn, care_group)
    if not devices:
        raise PageError(404, "No such flat", f"There is no flat {care_group!r} that you can see.")
    newest = max((d.last_seen for d in devices if d.last_seen), default=None)
    end = (newest or datetime.now(UTC)) + timedelta(microseconds=1)
    start = end - timedelta(days=days)
    activity = care_views.activity(page.conn, care_group, start, end)
    day_list = [start.date() + timedelta(days=i) for i in range((end.date() - start.date()).days + 1)]
    figures = activity_heatmaps(
        {room: [ActivityCell(c.day, c.hour, c.count) for c in cells] for room, cells in activity.items()}, day_list
    )
    timeline = care_views.timeline(page.conn, care_group, start, end)
    page.audit("care_flat_viewed", f"care_group:{care_group}", {"care_group": care_group, "days": days})
    return render(
        page,
        "care_flat.html",
        care_group=care_group,
        devices=devices,
        heatmaps=[(room, figure_json(fig)) for room, fig in figures],
        timeline=timeline,
        start=start,
        end=end,
        days=days,
        day_choices=DAYS,
    )
