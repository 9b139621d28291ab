"""The alert inbox: every open alert the role can see, the longest-waiting unacknowledged one first,
with how long it has waited, its escalation, and the people's actions (acknowledge, assign, note,
resolve) — which are the API's own routes, called by the page's script with the session's CSRF token,
so the page and a program act through exactly the same checks, audit and engine.

Care sees care alerts, highways gully and gateway alerts, admin all: row-level security decides.
A new fall raises the tab's title badge and a chime (once the person has switched sound on: browsers
allow sound only after a click). The time-to-acknowledge panel holds the team to the UK careline
standard, 98.5 % of calls answered within 60 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from dashboard.figures.acks import ack_time_figure
from dashboard.figures.style import figure_json
from dashboard.pages.web import Page, PageContext, fragment, render
from store import ack_times, alert_views, device_views
from store.alert_views import ShownAlert
from store.device_views import DeviceView

router = APIRouter(include_in_schema=False)

TARGET_S = 60.0
TARGET_PCT = 98.5
PANEL_DAYS = 7
_SEVERITY = {"critical": 0, "warning": 1, "info": 2}
#: Whose answer time the panel measures, by role: a fall for a carer, a flood for a highways engineer.
_MEASURED = {"care": ("fall",), "admin": ("fall",), "highways": ("flood",)}
_STATE_LABEL = {"pending": "Pending (not yet confirmed)", "firing": "Firing, waiting", "acknowledged": "Acknowledged"}


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One open alert as the inbox shows it."""

    shown: ShownAlert
    device: DeviceView | None
    waited_s: float
    waiting: bool  # nobody has acknowledged it yet

    @property
    def where(self) -> str:
        a, d = self.shown.alert, self.device
        if d is not None and d.is_care:
            return " · ".join(x for x in (d.care_group and f"Flat {d.care_group}", d.care_room) if x)
        if d is not None:
            return d.name or d.device_id
        return (a.gateway_id and f"Gateway {a.gateway_id}") or a.subject


def _order(item: InboxItem) -> tuple[Any, ...]:
    a = item.shown.alert
    return (not item.waiting, a.state == "pending", _SEVERITY.get(a.severity, 3), -item.waited_s)


def items(page: PageContext, now: datetime) -> list[InboxItem]:
    shown = alert_views.alerts(page.conn, state="open", limit=500)
    devices = device_views.by_refs(page.conn, sorted({s.alert.device_ref for s in shown if s.alert.device_ref}))
    out = []
    for s in shown:
        a = s.alert
        waiting = a.state in ("pending", "firing")
        end = now if waiting or a.acknowledged_at is None else a.acknowledged_at
        out.append(InboxItem(s, devices.get(a.device_ref or -1), (end - a.created_at).total_seconds(), waiting))
    out.sort(key=_order)
    care = [i.shown.alert.id for i in out if i.shown.care]
    if care:
        page.audit("care_alerts_listed", None, {"alert_ids": care, "page": "inbox"})
    return out


def _panel(page: PageContext, now: datetime) -> dict[str, Any]:
    categories = _MEASURED.get(page.role, ("fall",))
    since = now - timedelta(days=PANEL_DAYS)
    stats = ack_times.ack_stats(page.conn, since, categories=categories, target_s=TARGET_S)
    simulated = False
    if stats.count == 0:  # no real calls (a demo, a test bench): measure the simulated ones, and say so
        stats = ack_times.ack_stats(page.conn, since, categories=categories, target_s=TARGET_S, include_simulated=True)
        simulated = stats.count > 0
    figure = ack_time_figure(list(stats.waits_s), target_s=TARGET_S, target_pct=TARGET_PCT)
    return {"stats": stats, "categories": categories, "figure_json": figure_json(figure), "days": PANEL_DAYS,
            "simulated": simulated}  # fmt: skip


def _values(page: PageContext) -> dict[str, Any]:
    now = datetime.now(UTC)
    listed = items(page, now)
    falls = sum(1 for i in listed if i.waiting and i.shown.alert.category == "fall")
    return {
        "items": listed,
        "waiting": sum(1 for i in listed if i.waiting),
        "falls_waiting": falls,
        "state_label": _STATE_LABEL,
        "panel": _panel(page, now),
        "target_s": TARGET_S,
        "target_pct": TARGET_PCT,
        "now": now,
    }


@router.get("/inbox")
def inbox(page: Page) -> HTMLResponse:
    return render(page, "inbox.html", **_values(page))


@router.get("/inbox/live")
def inbox_live(page: Page) -> HTMLResponse:
    return fragment(page.request, "_inbox_live.html", csrf_token=page.principal.csrf_token or "", **_values(page))
