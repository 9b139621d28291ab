"""One gully's page: its water level over a chosen range with its warning and critical levels, the
outlet invert and its alerts; rate of rise; battery and signal; CSV export of what is shown; and its
cleanse priority.

Ranges end at the gully's newest reading (for a live gully, a few minutes ago; for a silent one, where
its data stops) so a chart is never an empty window after the data. Long ranges are bucketed in the
database (a year is 365 daily min/max/mean points, not 35,000 readings), with the same buckets the
readings CSV export offers, so the export is exactly what the chart shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from alerts.priority import Priority, rank
from alerts.rules import BlockageRule, RuleSet, SiltRule
from dashboard.api.rules import rules_in_force
from dashboard.figures.level import (
    AlertMarker,
    gully_level_figure,
    points_from_buckets,
    points_from_readings,
    threshold_mm,
)
from dashboard.figures.style import figure_json
from dashboard.gully_state import flood_levels
from dashboard.pages.web import PageContext, PageError, for_roles, render
from store import alert_views, device_views, gully_series, radio, reading_series
from store.device_views import DeviceView

router = APIRouter(include_in_schema=False)

Range = Literal["6h", "24h", "7d", "30d", "1y"]


@dataclass(frozen=True, slots=True)
class RangeSpec:
    label: str
    span: timedelta
    bucket: timedelta | None  # None: raw readings
    api_bucket: str | None  # the readings CSV route's name for that bucket


RANGES: dict[str, RangeSpec] = {
    "6h": RangeSpec("6 hours", timedelta(hours=6), None, None),
    "24h": RangeSpec("24 hours", timedelta(hours=24), None, None),
    "7d": RangeSpec("7 days", timedelta(days=7), None, None),
    "30d": RangeSpec("30 days", timedelta(days=30), timedelta(hours=1), "1h"),
    "1y": RangeSpec("1 year", timedelta(days=365), timedelta(days=1), "1d"),
}
#: Signal strength comes from the raw uplinks (one row each): charted for at most this much of a range.
RADIO_SPAN = timedelta(days=7)
#: What the chart draws of bucketed ranges (aggregating only these keeps a year's chart quick).
CHART_COLUMNS = ("distance_mm", "battery_v")
#: Raw ranges are at most 7 days of 15-minute readings (672); this bounds a gully that reports faster.
MAX_RAW = 20_000

GullyPage = Annotated[PageContext, for_roles("admin", "highways")]


def _gully(page: PageContext, device_id: str, application_id: str | None) -> DeviceView:
    found = [d for d in device_views.named(page.conn, device_id) if d.kind == "gully"]
    if application_id is not None:
        found = [d for d in found if d.application_id == application_id]
    if not found:
        raise PageError(404, "No such gully", f"There is no gully {device_id!r} that you can see.")
    return found[0]


def _priority(page: PageContext, device: DeviceView, rules: RuleSet | None, open_categories: set[str]) -> Priority:
    silt: dict[str, tuple[SiltRule, dict[str, object]]] = {}
    blocked: dict[str, tuple[BlockageRule, dict[str, object]]] = {}
    if rules is not None:
        states = gully_series.rule_states(page.conn, device.id)
        for rule in rules.rules_for(device):
            if rule.name in states and isinstance(rule, SiltRule):
                silt[device.device_id] = (rule, states[rule.name])
            elif rule.name in states and isinstance(rule, BlockageRule):
                blocked[device.device_id] = (rule, states[rule.name])
    return rank([(device.device_id, device.name)], silt, blocked, {device.device_id: open_categories})[0]


@router.get("/gullies/{device_id}")
def gully(
    page: GullyPage,
    device_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9._:@-]{1,128}$")],
    range_: Annotated[Range, Query(alias="range")] = "24h",
    application_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._:@-]{1,128}$")] = None,
) -> HTMLResponse:
    device = _gully(page, device_id, application_id)
    spec = RANGES[range_]
    end = (device.last_seen or datetime.now(UTC)) + timedelta(microseconds=1)
    start = end - spec.span
    if spec.bucket is None:
        readings = reading_series.raw(page.conn, device.id, start, end, after=None, limit=MAX_RAW)
        buckets: list[reading_series.Bucket] = []
    else:
        readings, buckets = [], reading_series.buckets(page.conn, device.id, spec.bucket, start, end, CHART_COLUMNS)
    height = device.sensor_height_mm or 0.0
    radio_samples = radio.samples(page.conn, device.id, max(start, end - RADIO_SPAN), end)
    loss = radio.packet_loss(radio_samples)
    shown = [
        s.alert
        for s in alert_views.alerts(page.conn, device_id=device.device_id, limit=500)
        if s.alert.device_ref == device.id and (s.alert.resolved_at is None or s.alert.resolved_at >= start)
    ]
    marks = [AlertMarker(a.opened_at, a.category, a.severity, a.summary or a.category) for a in shown]
    rules = rules_in_force(page.request)
    levels = flood_levels(rules)
    invert = device.outlet_invert_mm
    warning = threshold_mm(levels.warning_pct, height, invert)
    critical = threshold_mm(levels.critical_pct, height, invert)
    figure = gully_level_figure(
        f"{device.name or device.device_id}: water level, {spec.label}",
        start=start,
        end=end,
        sensor_height_mm=height,
        outlet_invert_mm=invert,
        warning_mm=warning,
        critical_mm=critical,
        readings=readings,
        buckets=buckets,
        bucket_width=spec.bucket,
        alerts=[m for m in marks if m.time >= start],
        radio=radio_samples,
        uirevision=f"{device.id}:{range_}",
    )
    points = (
        points_from_buckets(buckets, spec.bucket, height) if spec.bucket else points_from_readings(readings, height)
    )
    battery = next((r.battery_v for r in reversed(readings) if r.battery_v is not None), None)
    if battery is None and buckets and "battery_v" in buckets[-1].quantities:
        battery = buckets[-1].quantities["battery_v"].mean
    open_categories = {a.category for a in shown if a.state != "resolved"}
    query = {"start": start.isoformat(), "end": end.isoformat(), "limit": "10000"}
    if spec.api_bucket:
        query["bucket"] = spec.api_bucket
    return render(
        page,
        "gully.html",
        device=device,
        range_key=range_,
        ranges=RANGES,
        spec=spec,
        start=start,
        end=end,
        figure_json=figure_json(figure),
        points=points,
        latest=points[-1] if points else None,
        battery=battery,
        open_alerts=[a for a in shown if a.state != "resolved"],
        recent_alerts=shown[:20],
        levels=levels,
        warning_mm=warning,
        critical_mm=critical,
        loss=loss,
        radio_count=len(radio_samples),
        rssi=radio_samples[-1].rssi_dbm if radio_samples else None,
        snr=radio_samples[-1].snr_db if radio_samples else None,
        priority=_priority(page, device, rules, open_categories),
        csv_url=f"/api/v1/devices/{device.device_id}/readings.csv?{urlencode(query)}",
        app_query=f"&application_id={device.application_id}" if application_id else "",
    )
