"""The flood-risk overview's data: every gully the request's role can see, with its newest reading,
its level trend over the last hour and its open alerts, in three small queries whatever the size of the fleet.

Run under the request's role (dashboard/deps.py `Acting` has switched the transaction to
`lorawatch_highways` or `lorawatch_admin`), so row-level security decides which gullies exist: a
sealed device is not a gully here, even if someone reassigned it.

Why it is fast on a year of readings (35 M rows for 1,000 gullies; measured by
`python -m benchmarks.dashboard`): each gully's readings are read through one LATERAL subquery
bounded below by the device's own `last_seen` less LOOKBACK, so each gully costs an index range scan
of a few rows of its newest chunk, not a probe of every chunk of the year. Two details matter:

- Gullies heard within RECENT of the newest `last_seen` of the fleet (nearly all of them) also get
  that constant as a bound, so TimescaleDB drops the older chunks when it plans; with the per-row
  bound alone it re-checks all of them at run time for every gully (about twice as slow). The few
  gullies silent for longer go through the same subquery without it (a second branch).
- The bounds are computed in a subquery kept apart with OFFSET 0: under row-level security only
  leakproof conditions may be index conditions, and `last_seen - interval` is not leakproof, so
  written inside the lateral it would turn the time bound into a filter over all of the device's
  rows in the chunk (several times slower at this size, and growing with the chunk).

`devices.last_seen` is the newest uplink ingest has stored (never in the future), so the newest
reading is within LOOKBACK of it unless the device has sent only readings-less uplinks for that long;
then its reading is shown as unknown, which is what the page should say about such a device anyway.
A device never heard (`last_seen` NULL) has no reading and costs nothing. The battery shown is the
newest one known within LOOKBACK (not every uplink carries it).

The trend is the least-squares slope of the level over the readings in the hour up to `last_seen`
(`regr_slope`, so one bad echo moves it less than a two-point difference would), and only when those
readings span at least TREND_MIN_SPAN; otherwise None. Level = sensor height - distance, so the
level's slope is minus the distance's and needs no geometry.

Simulated alerts (from a network console's "simulate uplink") are left out: they must never change
what a real gully looks like (migration 0005).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from store.geometry import fill_pct, water_level_mm

#: How far before `last_seen` the newest reading is looked for.
LOOKBACK = timedelta(hours=2)
#: The trend's window, up to `last_seen`.
TREND_WINDOW = timedelta(hours=1)
#: Gullies heard within this of the newest `last_seen` of all are read with a constant time bound.
RECENT = timedelta(days=1)
#: The least time between the first and last readings of the window for a trend to be given.
TREND_MIN_SPAN = timedelta(minutes=10)

#: A gully's newest reading and trend, from its readings since `d.since`, newest first (so the
#: aggregates' first element is the newest: PostgreSQL feeds an aggregate in its subquery's order).
#: `{floor}` adds a constant lower bound for the gullies heard recently, which lets TimescaleDB drop
#: every older chunk when it plans (run-time exclusion alone re-checks all of them for every gully).
_LATEST = """
LEFT JOIN LATERAL (
    SELECT max(x.time) AS reading_time,
           (array_agg(x.distance_mm))[1] AS distance_mm,
           (array_agg(x.battery_v) FILTER (WHERE x.battery_v IS NOT NULL))[1] AS battery_v,
           (array_agg(x.battery_pct) FILTER (WHERE x.battery_pct IS NOT NULL))[1] AS battery_pct,
           regr_slope(x.distance_mm, extract(epoch FROM x.time)) FILTER (WHERE x.time >= d.trend_since)
               AS distance_slope,
           count(x.distance_mm) FILTER (WHERE x.time >= d.trend_since) AS trend_readings,
           extract(epoch FROM max(x.time) FILTER (WHERE x.time >= d.trend_since AND x.distance_mm IS NOT NULL)
                              - min(x.time) FILTER (WHERE x.time >= d.trend_since AND x.distance_mm IS NOT NULL))
               AS trend_span_s
    FROM (SELECT r.time, r.distance_mm, r.battery_v, r.battery_pct FROM readings r
          WHERE r.device_ref = d.id AND r.time >= d.since{floor} ORDER BY r.time DESC) x
    HAVING count(*) > 0
) w ON true"""

#: The gullies, with the bounds of their lateral as plain columns: OFFSET 0 keeps them so, because
#: under row-level security only leakproof quals may be index conditions, and `last_seen - interval`
#: is not leakproof (written in the lateral, `time` would be a filter over the device's whole chunk).
_DEVICES = """
SELECT d.id, d.device_id, d.application_id, d.name, d.location_name, d.latitude, d.longitude,
       d.sensor_height_mm, d.outlet_invert_mm, d.last_seen,
       w.reading_time, w.distance_mm, w.battery_v, w.battery_pct,
       w.distance_slope, w.trend_readings, w.trend_span_s
FROM (
    SELECT id, device_id, application_id, name, location_name, latitude, longitude, sensor_height_mm,
           outlet_invert_mm, last_seen, last_seen - %(lookback)s AS since, last_seen - %(trend)s AS trend_since
    FROM devices WHERE kind = 'gully' AND {which} OFFSET 0
) d"""

_GULLIES = (
    _DEVICES.format(which="last_seen - %(lookback)s >= %(floor)s")
    + _LATEST.format(floor=" AND r.time >= %(floor)s")
    + "\nUNION ALL"
    + _DEVICES.format(which="(last_seen IS NULL OR last_seen - %(lookback)s < %(floor)s)")
    + _LATEST.format(floor="")
    + "\nORDER BY device_id, application_id"
)
_NEWEST = "SELECT max(last_seen) FROM devices WHERE kind = 'gully'"

_OPEN_ALERTS = """
SELECT a.device_ref, a.id, a.category, a.severity, a.state, a.opened_at
FROM alerts a JOIN devices d ON d.id = a.device_ref AND d.kind = 'gully'
WHERE a.state <> 'resolved' AND NOT a.simulated
ORDER BY a.device_ref, a.opened_at, a.id"""


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """One open (pending, firing or acknowledged) alert of a gully."""

    alert_id: int
    category: str
    severity: str
    state: str
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class GullyStatus:
    """A gully as the overview shows it. Reading fields are None when it has no reading near its
    `last_seen` (never heard, or heard without measuring); `level_mm`/`fill_pct` also when its
    geometry is not registered or the reading had no echo. `battery_*`: the newest known within
    LOOKBACK; `trend_mm_per_h`: the level's least-squares slope over TREND_WINDOW (None with too few
    readings); `open_alerts`: oldest first, simulated ones left out."""

    ref: int  # devices.id
    device_id: str
    application_id: str
    name: str | None
    location_name: str | None
    latitude: float | None
    longitude: float | None
    sensor_height_mm: float | None
    outlet_invert_mm: float | None
    last_seen: datetime | None
    reading_time: datetime | None
    distance_mm: float | None
    level_mm: float | None
    fill_pct: float | None
    trend_mm_per_h: float | None
    battery_v: float | None
    battery_pct: float | None
    open_alerts: tuple[OpenAlert, ...] = ()

    @property
    def label(self) -> str:
        """`application_id/device_id`, as the rest of the app names a device."""
        return f"{self.application_id}/{self.device_id}"


def level_trend(slope: float | None, readings: int | None, span_s: float | None) -> float | None:
    """The level's change in mm/h from the distance's least-squares slope (mm/s) over the trend
    window, or None without at least two readings spanning TREND_MIN_SPAN."""
    if slope is None or readings is None or span_s is None:
        return None
    if readings < 2 or span_s < TREND_MIN_SPAN.total_seconds():
        return None
    return -float(slope) * 3600.0


def gully_overview(conn: psycopg.Connection) -> list[GullyStatus]:
    """Every gully the connection's current role can see, by device_id then application, each with
    its newest reading, trend and open alerts."""
    row = conn.execute(_NEWEST).fetchone()
    newest: datetime | None = row[0] if row else None
    # With no gully heard yet, none takes the bounded branch.
    floor = newest - RECENT if newest is not None else datetime.max.replace(tzinfo=UTC)
    rows = conn.execute(_GULLIES, {"lookback": LOOKBACK, "trend": TREND_WINDOW, "floor": floor}).fetchall()
    alerts: dict[int, list[OpenAlert]] = defaultdict(list)
    for ref, *fields in conn.execute(_OPEN_ALERTS).fetchall():
        alerts[ref].append(OpenAlert(*fields))
    return [_status(row, alerts.get(row[0], ())) for row in rows]


def _status(row: tuple[Any, ...], alerts: list[OpenAlert] | tuple[()]) -> GullyStatus:
    (ref, device_id, application_id, name, location_name, latitude, longitude, height, invert, last_seen,
     reading_time, distance, battery_v, battery_pct, slope, trend_readings, trend_span) = row  # fmt: skip
    level = water_level_mm(distance, height)
    return GullyStatus(
        ref=ref,
        device_id=device_id,
        application_id=application_id,
        name=name,
        location_name=location_name,
        latitude=latitude,
        longitude=longitude,
        sensor_height_mm=height,
        outlet_invert_mm=invert,
        last_seen=last_seen,
        reading_time=reading_time,
        distance_mm=distance,
        level_mm=level,
        fill_pct=fill_pct(level, height, invert),
        trend_mm_per_h=level_trend(slope, trend_readings, None if trend_span is None else float(trend_span)),
        battery_v=battery_v,
        battery_pct=battery_pct,
        open_alerts=tuple(alerts),
    )


__all__ = [
    "LOOKBACK",
    "RECENT",
    "TREND_MIN_SPAN",
    "TREND_WINDOW",
    "GullyStatus",
    "OpenAlert",
    "gully_overview",
    "level_trend",
]
