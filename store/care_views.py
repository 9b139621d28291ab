"""SQL of the care flat pages: the flats, one flat's devices, its activity heatmap and its timeline.

Every query runs on the caller's connection inside the request's `SET LOCAL ROLE`, so row-level
security decides what exists: a highways request finds no care device, hence no flat, no activity and
no timeline (empty results, never an error). Nothing here is SECURITY DEFINER.

A flat is a `care_group` (every care sensor watching one resident shares it) and is shown by that
name alone: device names may hold a resident's name, so they are never returned. Times are UTC.

The page agrees with the welfare alerts (alerts/evaluators/welfare.py, whose notions this module
mirrors, since store imports nothing of ours; a test keeps the defaults in step):

- *activity* for the heatmap is a reading with motion, occupancy or a motion count above 0 (what the
  night rule counts as an event; presence counts, so a bedroom is lit while someone sleeps in it);
- a *bathroom visit* runs from the bathroom sensor's occupied to its vacant;
- *night* is the UTC hour window `(0, 5)` (`a` <= hour < `b`, wrapping past midnight when `a` > `b`);
  activity outside the bedroom and bathroom then is "up at night", and readings closer together than
  the rule's `window` (30 min) are one episode, as the night rule resolves after `window` of quiet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import class_row

#: welfare.py's BATHROOM, NIGHT_ROOMS, and WelfareRule's `night` and `window` defaults.
BATHROOM = "bathroom"
NIGHT_ROOMS: frozenset[str] = frozenset({"bedroom", "bathroom"})
NIGHT: tuple[int, int] = (0, 5)
NIGHT_WINDOW = timedelta(minutes=30)
#: Two fall alarms of one device with the same alarm id this close together are one fall (the VS373
#: re-sends its history minutes after the live alarm, stamped with its own clock).
SAME_FALL = timedelta(hours=1)
#: How far before the window the bathroom sensor's state is looked up (it reports every 30 min), so
#: that a visit already running when the window starts is not taken for one starting then.
LOOKBACK = timedelta(days=1)

TimelineKind = Literal["fall", "bathroom", "night", "alert"]
SEVERITY_ORDER = ("critical", "warning", "info")

#: The flat an alert (`a`, with its device `d` LEFT JOINed as a care device) belongs to: the welfare
#: rules' subject `flat:<care_group>` (`:simulated` for test uplinks) first, as it names the flat the
#: alert was judged for even if a sensor has moved since; otherwise its care device's flat. Its `%`
#: are doubled: it is for queries executed with parameters.
ALERT_FLAT = """coalesce(
    CASE WHEN a.subject LIKE 'flat:%%:simulated' THEN substr(a.subject, 6, length(a.subject) - 15)
         WHEN a.subject LIKE 'flat:%%' THEN substr(a.subject, 6) END,
    d.care_group)"""
_ALERTS_WITH_FLAT = f"""
SELECT a.*, d.care_room AS room, {ALERT_FLAT} AS flat
FROM alerts a LEFT JOIN devices d ON d.id = a.device_ref AND d.kind = 'care'"""


@dataclass(frozen=True, slots=True)
class FlatSummary:
    """One flat as the list of flats shows it. `top_category`/`top_severity`: its most severe open
    alert (the longest waiting among equals), None with none open."""

    care_group: str
    rooms: tuple[str, ...]
    devices: int
    last_seen: datetime | None
    open_alerts: int
    top_category: str | None
    top_severity: str | None


@dataclass(frozen=True, slots=True)
class FlatDevice:
    """A sensor of a flat. `model` is `brand_id/model_id` (the decoder's name); the battery is its
    newest reading that has one (`battery_pct` or `battery_v`, whichever the model reports)."""

    device_id: str
    application_id: str
    care_room: str | None
    model: str | None
    last_seen: datetime | None
    battery_pct: float | None
    battery_v: float | None
    battery_at: datetime | None


@dataclass(frozen=True, slots=True)
class ActivityCell:
    """Readings showing activity in one room in one UTC hour (as dashboard/figures/heatmap.py's)."""

    day: date
    hour: int
    count: int


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One line of a flat's timeline. `end`: when a visit or episode ended (None: an instant, or still
    going on); `alert_id`: the alert it is, or the fall alert it raised."""

    time: datetime
    room: str | None
    kind: TimelineKind
    label: str
    alert_id: int | None
    end: datetime | None = None


# --- the flats -----------------------------------------------------------------------------------------

_FLATS = f"""
WITH flat AS (
    SELECT care_group,
           array_remove(array_agg(DISTINCT care_room ORDER BY care_room), NULL) AS rooms,
           count(*) AS devices, max(last_seen) AS last_seen
    FROM devices WHERE kind = 'care' AND care_group IS NOT NULL AND care_group <> ''
    GROUP BY care_group
), open AS (
    SELECT x.flat, x.category, x.severity, x.created_at, x.id
    FROM ({_ALERTS_WITH_FLAT} WHERE a.state <> 'resolved') x
    WHERE x.flat IS NOT NULL
)
SELECT f.care_group, f.rooms, f.devices, f.last_seen,
       (SELECT count(*) FROM open o WHERE o.flat = f.care_group) AS open_alerts,
       top.category, top.severity
FROM flat f
LEFT JOIN LATERAL (
    SELECT o.category, o.severity FROM open o WHERE o.flat = f.care_group
    ORDER BY array_position(%(order)s::text[], o.severity), o.created_at, o.id LIMIT 1
) top ON true
ORDER BY f.care_group"""


def flats(conn: psycopg.Connection) -> list[FlatSummary]:
    """Every flat with a care device the role can see, by name: its rooms, sensors, newest uplink,
    and its open alerts (simulated ones too: they are open and someone must close them)."""
    rows = conn.execute(_FLATS, {"order": list(SEVERITY_ORDER)}).fetchall()
    return [FlatSummary(g, tuple(rooms), n, seen, alerts, cat, sev) for g, rooms, n, seen, alerts, cat, sev in rows]


_FLAT_DEVICES = """
SELECT d.device_id, d.application_id, d.care_room,
       CASE WHEN d.model_id IS NULL THEN NULL
            WHEN d.brand_id IS NULL THEN d.model_id ELSE d.brand_id || '/' || d.model_id END AS model,
       d.last_seen, b.battery_pct, b.battery_v, b.time AS battery_at
FROM devices d
LEFT JOIN LATERAL (
    SELECT r.time, r.battery_pct, r.battery_v FROM readings r
    WHERE r.device_ref = d.id AND (r.battery_pct IS NOT NULL OR r.battery_v IS NOT NULL)
      AND (d.last_seen IS NULL OR r.time >= d.last_seen - interval '30 days')  -- an index range, not every chunk
    ORDER BY r.time DESC LIMIT 1
) b ON true
WHERE d.kind = 'care' AND d.care_group = %s
ORDER BY d.care_room NULLS LAST, d.device_id, d.application_id"""


def flat_devices(conn: psycopg.Connection, care_group: str) -> list[FlatDevice]:
    """The flat's sensors by room (none when the role cannot see the flat)."""
    with conn.cursor(row_factory=class_row(FlatDevice)) as cur:
        return cur.execute(_FLAT_DEVICES, (care_group,)).fetchall()


# --- the heatmap ---------------------------------------------------------------------------------------

_ROOMS = """
SELECT DISTINCT care_room FROM devices
WHERE kind = 'care' AND care_group = %s AND care_room IS NOT NULL ORDER BY care_room"""
_ACTIVITY = """
SELECT d.care_room, time_bucket('1 hour', r.time) AT TIME ZONE 'UTC' AS hour, count(*)
FROM readings r JOIN devices d ON d.id = r.device_ref
WHERE d.kind = 'care' AND d.care_group = %(flat)s AND d.care_room IS NOT NULL
  AND r.time >= %(start)s AND r.time < %(end)s
  AND (r.motion OR r.occupied OR r.motion_count > 0)
GROUP BY 1, 2 ORDER BY 1, 2"""


def activity(
    conn: psycopg.Connection, care_group: str, start: datetime, end: datetime
) -> dict[str, list[ActivityCell]]:
    """Per room of the flat (every room with a sensor, an empty list where nothing happened), the
    readings showing activity in [start, end) per UTC day and hour, oldest first. Counted in the
    database (hourly `time_bucket`), so a month is 720 rows a room at most, whatever the report rate.
    Sensors with no room are left out (the welfare rules cannot place them either)."""
    out: dict[str, list[ActivityCell]] = {room: [] for (room,) in conn.execute(_ROOMS, (care_group,)).fetchall()}
    rows = conn.execute(_ACTIVITY, {"flat": care_group, "start": start, "end": end}).fetchall()
    for room, hour, count in rows:
        out.setdefault(room, []).append(ActivityCell(hour.date(), hour.hour, int(count)))
    return out


# --- the timeline --------------------------------------------------------------------------------------

_DEVICES = "SELECT id, care_room FROM devices WHERE kind = 'care' AND care_group = %s"
_FALL_EVENTS = """
SELECT e.time, e.device_ref, e.attrs ->> 'alarm_id' FROM events e
WHERE e.device_ref = ANY(%(refs)s) AND e.time >= %(start)s AND e.time < %(end)s
  AND e.kind = 'alarm' AND e.attrs ->> 'alarm_type' = 'fall' AND e.attrs ->> 'alarm_status' = 'alarm_triggered'
ORDER BY e.time"""
_FLAT_ALERTS = f"""
SELECT x.id, x.category, x.opened_at, x.resolved_at, x.device_ref, x.room, x.device_alarm_id
FROM ({_ALERTS_WITH_FLAT}
      WHERE a.opened_at >= %(start)s AND a.opened_at < %(end)s AND NOT a.simulated) x
WHERE x.flat = %(flat)s
ORDER BY x.opened_at, x.id"""
# The occupancy changes of the bathroom sensors in the window, with each sensor's state just before it
# and its newest reading (how long a visit still going on has lasted so far).
_OCCUPANCY_CHANGES = """
WITH r AS (
    SELECT device_ref, time, occupied FROM readings
    WHERE device_ref = ANY(%(refs)s) AND time >= %(start)s AND time < %(end)s AND occupied IS NOT NULL
    UNION ALL
    SELECT p.device_ref, p.time, p.occupied FROM unnest(%(refs)s::integer[]) AS ref (id)
    CROSS JOIN LATERAL (
        SELECT device_ref, time, occupied FROM readings
        WHERE device_ref = ref.id AND time < %(start)s AND time >= %(lookback)s AND occupied IS NOT NULL
        ORDER BY time DESC LIMIT 1
    ) p
), c AS (
    SELECT device_ref, time, occupied, lag(occupied) OVER (w ORDER BY time) AS before, max(time) OVER w AS newest
    FROM r WINDOW w AS (PARTITION BY device_ref)
)
SELECT device_ref, time, occupied, newest FROM c
WHERE occupied IS DISTINCT FROM before ORDER BY device_ref, time"""
_NIGHT_ACTIVITY = """
SELECT time, device_ref FROM readings
WHERE device_ref = ANY(%(refs)s) AND time >= %(start)s AND time < %(end)s
  AND (motion OR motion_count > 0 OR occupied)
  AND extract(hour FROM time AT TIME ZONE 'UTC')::integer = ANY(%(hours)s)
ORDER BY time"""
_OUT_OF_BED = """
SELECT time, device_ref FROM (
    SELECT time, device_ref, in_bed, lag(in_bed) OVER (PARTITION BY device_ref ORDER BY time) AS before
    FROM readings
    WHERE device_ref = ANY(%(refs)s) AND time >= %(start)s AND time < %(end)s AND in_bed IS NOT NULL
) x
WHERE before AND NOT in_bed AND extract(hour FROM time AT TIME ZONE 'UTC')::integer = ANY(%(hours)s)"""


def timeline(
    conn: psycopg.Connection,
    care_group: str,
    start: datetime,
    end: datetime,
    limit: int = 200,
    *,
    night: tuple[int, int] = NIGHT,
    night_window: timedelta = NIGHT_WINDOW,
    night_rooms: Iterable[str] = NIGHT_ROOMS,
    bathroom: str = BATHROOM,
) -> list[TimelineItem]:
    """What happened in the flat in [start, end) (data time), newest first, at most `limit`:

    - `fall`: each fall the radar alarmed (its live alarm and re-sent history are one fall) and each
      fall alert, one item per fall, carrying the alert's id when it raised one;
    - `bathroom`: each visit that began in the window, with its length (or its length so far);
    - `night`: getting out of bed in the night hours, and episodes of activity outside `night_rooms`;
    - `alert`: every other alert of the flat (welfare, offline, battery), simulated ones left out
      (their readings are not the flat's either).

    Pass the welfare rules' `night`, `window` and room names when they are not the defaults."""
    devices: dict[int, str | None] = dict(conn.execute(_DEVICES, (care_group,)).fetchall())
    if not devices:
        return []
    window = {"start": start, "end": end}
    alerts = conn.execute(_FLAT_ALERTS, {**window, "flat": care_group}).fetchall()
    events = conn.execute(_FALL_EVENTS, {**window, "refs": list(devices)}).fetchall()
    items = _falls(events, [a for a in alerts if a[1] == "fall"], devices)
    items += [_alert_item(a[0], a[1], a[2], a[5]) for a in alerts if a[1] != "fall"]
    baths = [ref for ref, room in devices.items() if room == bathroom]
    if baths:
        params = {**window, "refs": baths, "lookback": start - LOOKBACK}
        changes = conn.execute(_OCCUPANCY_CHANGES, params).fetchall()
        items += _visits(changes, start, bathroom)
    hours = night_hours(night)
    if hours:
        rooms = frozenset(night_rooms)
        about = [ref for ref, room in devices.items() if room is not None and room not in rooms]
        found = conn.execute(_NIGHT_ACTIVITY, {**window, "refs": about, "hours": hours}).fetchall()
        items += _night_episodes([(t, devices[ref]) for t, ref in found], night_window)
        up = conn.execute(_OUT_OF_BED, {**window, "refs": list(devices), "hours": hours}).fetchall()
        items += [TimelineItem(t, devices[ref], "night", "Out of bed at night", None) for t, ref in up]
    items.sort(key=lambda i: (i.time, i.kind, i.label), reverse=True)
    return items[:limit]


# --- pure parts of the timeline ------------------------------------------------------------------------


def night_hours(night: tuple[int, int]) -> list[int]:
    """The UTC hours of day in a welfare window `(a, b)`: a <= hour < b, wrapping past midnight when
    a > b; `(0, 24)` is every hour and a == b none (welfare.py's `_window`)."""
    a, b = night
    if a % 24 == b % 24:
        return list(range(24)) if a != b else []
    return [h % 24 for h in range(a, a + (b - a) % 24)]


def _falls(
    events: Sequence[tuple[datetime, int, str | None]],
    alerts: Sequence[tuple[Any, ...]],
    devices: dict[int, str | None],
) -> list[TimelineItem]:
    """One item per fall: alarms of one device with one alarm id within SAME_FALL are one fall, and a
    fall alert of the same device (same alarm id, when both have one) within SAME_FALL of it is that
    fall's alert. Fall alerts matching no alarm in the window are items of their own."""
    falls: list[tuple[datetime, int, str | None]] = []
    for at, ref, alarm in events:  # oldest first
        if not any(r == ref and a == alarm and at - t <= SAME_FALL for t, r, a in falls):
            falls.append((at, ref, alarm))
    claimed: set[int] = set()
    items = []
    for at, ref, alarm in falls:
        alert_id = None
        for a_id, _category, opened, _resolved, a_ref, _room, a_alarm in alerts:
            same = a_ref == ref and (a_alarm is None or alarm is None or a_alarm == alarm)
            if a_id not in claimed and same and abs(opened - at) <= SAME_FALL:
                alert_id = a_id
                claimed.add(a_id)
                break
        items.append(TimelineItem(at, devices.get(ref), "fall", _fall_label(devices.get(ref)), alert_id))
    for a_id, _category, opened, _resolved, _ref, room, _alarm in alerts:
        if a_id not in claimed:
            items.append(TimelineItem(opened, room, "fall", _fall_label(room), a_id))
    return items


def _fall_label(room: str | None) -> str:
    return f"Fall detected ({room})" if room else "Fall detected"


#: What the timeline calls each alert category (no summaries: they may carry details a line needs not).
_ALERT_LABELS = {
    "inactivity": "No activity alert",
    "bathroom_dwell": "Long bathroom visit alert",
    "night_activity": "Night activity alert",
    "offline": "Sensor offline",
    "battery_low": "Battery low",
}
#: Categories judged for the whole flat: the room of the device an alert names adds nothing.
_FLAT_CATEGORIES = frozenset({"inactivity", "bathroom_dwell"})


def _alert_item(alert_id: int, category: str, opened: datetime, room: str | None) -> TimelineItem:
    label = _ALERT_LABELS.get(category) or f"{category.replace('_', ' ').capitalize()} alert"
    if room and category not in _FLAT_CATEGORIES:
        label += f" ({room})"
    return TimelineItem(opened, room, "alert", label, alert_id)


def _visits(changes: Sequence[tuple[int, datetime, bool, datetime]], start: datetime, room: str) -> list[TimelineItem]:
    """Bathroom visits from each sensor's occupancy changes (device, time, occupied, its newest
    reading), in time order per device: occupied opens a visit, vacant closes it. Only visits that
    began at or after `start` are shown (one running at the start began before the window)."""
    items = []
    began: dict[int, datetime] = {}
    newest: dict[int, datetime] = {}
    for ref, at, occupied, last in changes:
        newest[ref] = last
        if occupied:
            began[ref] = at
        elif ref in began:
            since = began.pop(ref)
            if since >= start:
                label = f"Bathroom visit, {_duration(at - since)}"
                items.append(TimelineItem(since, room, "bathroom", label, None, at))
    for ref, since in began.items():
        if since >= start:
            label = f"Bathroom visit in progress, {_duration(newest[ref] - since)} so far"
            items.append(TimelineItem(since, room, "bathroom", label, None))
    return items


def _night_episodes(found: Sequence[tuple[datetime, str | None]], gap: timedelta) -> list[TimelineItem]:
    """Night activity (time, room), oldest first, as episodes: a reading within `gap` of the previous
    one continues the episode. Each is labelled with its rooms in the order they were seen."""
    episodes: list[list[tuple[datetime, str | None]]] = []
    for at, room in found:
        if episodes and at - episodes[-1][-1][0] < gap:
            episodes[-1].append((at, room))
        else:
            episodes.append([(at, room)])
    items = []
    for episode in episodes:
        first, last = episode[0][0], episode[-1][0]
        rooms = list(dict.fromkeys(r for _, r in episode if r is not None))
        label = f"Up at night ({', '.join(rooms)})" if rooms else "Up at night"
        if last > first:
            label += f", {_duration(last - first)}"
        items.append(TimelineItem(first, rooms[0] if rooms else None, "night", label, None, last))
    return items


def _duration(span: timedelta) -> str:
    minutes = round(span / timedelta(minutes=1))
    if minutes < 1:
        return "under 1 min"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


__all__ = [
    "ALERT_FLAT",
    "BATHROOM",
    "NIGHT",
    "NIGHT_ROOMS",
    "NIGHT_WINDOW",
    "ActivityCell",
    "FlatDevice",
    "FlatSummary",
    "TimelineItem",
    "TimelineKind",
    "activity",
    "flat_devices",
    "flats",
    "night_hours",
    "timeline",
]
