"""The care flat pages' queries against a real TimescaleDB, as the owner and as the API acting as each
role: highways must find no flat, no device, no activity and no timeline at all.

Seeded as the owner with plain INSERTs, so each test says exactly which rows exist."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from alerts.evaluators import welfare
from alerts.rules import WelfareRule
from store import access, care_views
from store.care_views import ActivityCell, FlatDevice, FlatSummary, TimelineItem

D = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, 00:00 UTC
H = timedelta(hours=1)
M = timedelta(minutes=1)
_rules = itertools.count(1)

#: (device_id, kind, brand, model, care_room, care_group)
DEVICES = (
    ("a-bedroom", "care", "milesight-iot", "vs373", "bedroom", "flat-a"),
    ("a-bathroom", "care", "milesight-iot", "vs330", "bathroom", "flat-a"),
    ("a-hall", "care", "milesight-iot", "ws202", "hall", "flat-a"),
    ("a-kitchen", "care", "milesight-iot", "vs370", "kitchen", "flat-a"),
    ("a-living", "care", "elsys", "ers-eye", "living", "flat-a"),
    ("a-spare", "care", None, None, None, "flat-a"),  # registered without a room
    ("b-living", "care", "elsys", "ers-eye", "living", "flat-b"),
    ("gully-1", "gully", "dragino", "ldds75", None, None),
    ("new-1", "unassigned", None, None, None, "flat-z"),  # not a care device: no flat
)


@pytest.fixture
def refs(db_url: str) -> dict[str, int]:
    """The devices above, each last seen at a time of its own (D + 12 h + its position in minutes)."""
    out = {}
    with psycopg.connect(db_url) as conn:
        for i, (name, kind, brand, model, room, group) in enumerate(DEVICES):
            row = conn.execute(
                "INSERT INTO devices (device_id, application_id, kind, brand_id, model_id, name, care_room, "
                "care_group, last_seen) VALUES (%s, 'app', %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (name, kind, brand, model, f"Mrs Example {name}", room, group, D + 12 * H + i * M),
            ).fetchone()
            assert row is not None
            out[name] = row[0]
    return out


def readings(db_url: str, rows: list[tuple[int, datetime, dict[str, Any]]]) -> None:
    with psycopg.connect(db_url) as conn:
        for ref, t, values in rows:
            columns = sql.SQL(", ").join(sql.Identifier(c) for c in ["device_ref", "time", *values])
            holes = sql.SQL(", ").join(sql.Placeholder() * (2 + len(values)))
            conn.execute(
                sql.SQL("INSERT INTO readings ({}) VALUES ({})").format(columns, holes), [ref, t, *values.values()]
            )


def alert(
    conn: psycopg.Connection,
    category: str,
    opened_at: datetime,
    *,
    ref: int | None,
    kind: str = "care",
    state: str = "firing",
    severity: str = "warning",
    subject: str | None = None,
    simulated: bool = False,
    alarm: str | None = None,
    created_at: datetime | None = None,
) -> int:
    row = conn.execute(
        "INSERT INTO alerts (rule, category, severity, subject, device_ref, kind, state, simulated, opened_at, "
        "firing_at, device_alarm_id, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            f"rule-{next(_rules)}",
            category,
            severity,
            subject or f"device:{ref}",
            ref,
            kind,
            state,
            simulated,
            opened_at,
            opened_at,
            alarm,
            created_at or opened_at,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


@contextmanager
def acting(api_db_url: str, role: str) -> Iterator[psycopg.Connection]:
    """A transaction as lorawatch_api switched to `role`, as the API's requests run."""
    with psycopg.connect(api_db_url) as conn, conn.transaction():
        access.act_as(conn, role)
        yield conn


# --- flats ---------------------------------------------------------------------------------------------


def test_flats_summarise_each_care_group_and_its_open_alerts(
    db_url: str, api_db_url: str, refs: dict[str, int]
) -> None:
    with psycopg.connect(db_url) as conn:
        alert(conn, "inactivity", D, ref=refs["a-living"], subject="flat:flat-a", created_at=D + 2 * M)
        fall = alert(conn, "fall", D + H, ref=refs["a-bedroom"], state="acknowledged", severity="critical")
        conn.execute("UPDATE alerts SET created_at = %s WHERE id = %s", (D + 4 * M, fall))  # waited longest
        alert(conn, "fall", D + H, ref=refs["a-bedroom"], state="resolved", severity="critical")  # closed
        alert(conn, "battery_low", D, ref=refs["a-hall"], severity="critical", created_at=D + 5 * M)  # newer
        # a welfare alert of a test uplink, which names its flat only in its subject
        alert(conn, "night_activity", D, ref=None, subject="flat:flat-b:simulated", simulated=True)
        alert(conn, "flood", D, ref=refs["gully-1"], kind="gully", severity="critical")
        alert(conn, "gateway_offline", D, ref=None, kind="gateway", subject="gateway:gw-1", severity="critical")
        owner = care_views.flats(conn)
    expected = [
        FlatSummary(
            "flat-a", ("bathroom", "bedroom", "hall", "kitchen", "living"), 6, D + 12 * H + 5 * M, 3, "fall", "critical"
        ),
        FlatSummary("flat-b", ("living",), 1, D + 12 * H + 6 * M, 1, "night_activity", "warning"),
    ]
    assert owner == expected
    for role in ("care", "admin"):
        with acting(api_db_url, role) as conn:
            assert care_views.flats(conn) == expected
    with acting(api_db_url, "highways") as conn:
        assert care_views.flats(conn) == []


def test_a_flat_is_named_by_its_care_group_only(db_url: str, refs: dict[str, int]) -> None:
    """Device names may hold a resident's name: nothing the flat pages return carries them."""
    with psycopg.connect(db_url) as conn:
        shown = repr(care_views.flats(conn)) + repr(care_views.flat_devices(conn, "flat-a"))
    assert "Mrs Example" not in shown


def test_flat_devices_with_their_newest_battery(db_url: str, api_db_url: str, refs: dict[str, int]) -> None:
    readings(
        db_url,
        [
            (refs["a-hall"], D + 10 * H, {"battery_pct": 80.0}),
            (refs["a-hall"], D + 11 * H, {"battery_pct": 78.0, "motion": True}),
            (refs["a-hall"], D + 12 * H, {"motion": False}),  # newer, but no battery in it
            (refs["a-living"], D + 9 * H, {"battery_v": 3.5}),
            (refs["b-living"], D + 11 * H, {"battery_v": 3.1}),
        ],
    )

    def seen(i: int) -> datetime:
        return D + 12 * H + i * M

    expected = [
        FlatDevice("a-bathroom", "app", "bathroom", "milesight-iot/vs330", seen(1), None, None, None),
        FlatDevice("a-bedroom", "app", "bedroom", "milesight-iot/vs373", seen(0), None, None, None),
        FlatDevice("a-hall", "app", "hall", "milesight-iot/ws202", seen(2), 78.0, None, D + 11 * H),
        FlatDevice("a-kitchen", "app", "kitchen", "milesight-iot/vs370", seen(3), None, None, None),
        FlatDevice("a-living", "app", "living", "elsys/ers-eye", seen(4), None, 3.5, D + 9 * H),
        FlatDevice("a-spare", "app", None, None, seen(5), None, None, None),
    ]
    with psycopg.connect(db_url) as conn:
        assert care_views.flat_devices(conn, "flat-a") == expected
        assert care_views.flat_devices(conn, "flat-z") == []  # unassigned devices are nobody's flat
    with acting(api_db_url, "care") as conn:
        assert care_views.flat_devices(conn, "flat-a") == expected
    with acting(api_db_url, "highways") as conn:
        assert care_views.flat_devices(conn, "flat-a") == []


# --- activity ------------------------------------------------------------------------------------------


def test_activity_counts_per_room_day_and_utc_hour(db_url: str, api_db_url: str, refs: dict[str, int]) -> None:
    start, end = D, D + 2 * timedelta(days=1)
    readings(
        db_url,
        [
            (refs["a-bedroom"], D + 2 * H + 10 * M, {"occupied": True}),
            (refs["a-bedroom"], D + 2 * H + 40 * M, {"occupied": True, "in_bed": True}),
            (refs["a-bedroom"], D + 3 * H + 5 * M, {"occupied": False}),  # vacant: not activity
            (refs["a-bedroom"], D + 23 * H + 59 * M, {"occupied": True}),
            (refs["a-hall"], D + 34 * H, {"motion": True}),  # day 2, 10:00
            (refs["a-hall"], D + 34 * H + 30 * M, {"motion": False}),
            (refs["a-living"], D + 34 * H + 15 * M, {"motion_count": 3}),
            (refs["a-living"], D + 34 * H + 20 * M, {"motion_count": 0}),
            (refs["a-living"], D + 34 * H + 25 * M, {"battery_v": 3.5}),
            (refs["a-bedroom"], start - M, {"occupied": True}),  # before the window
            (refs["a-bedroom"], end, {"occupied": True}),  # the window's end is not in it
            (refs["a-spare"], D + 5 * H, {"motion": True}),  # no room: nowhere on the map
            (refs["b-living"], D + 5 * H, {"motion_count": 9}),  # another flat
        ],
    )
    day2 = date(2026, 3, 3)
    expected = {
        "bathroom": [],
        "bedroom": [ActivityCell(date(2026, 3, 2), 2, 2), ActivityCell(date(2026, 3, 2), 23, 1)],
        "hall": [ActivityCell(day2, 10, 1)],
        "kitchen": [],
        "living": [ActivityCell(day2, 10, 1)],
    }
    with psycopg.connect(db_url) as conn:
        assert care_views.activity(conn, "flat-a", start, end) == expected
    with acting(api_db_url, "care") as conn:
        # hours are UTC hours whatever the session's time zone (here UTC-5: 23:59 UTC is 18:59 local)
        conn.execute("SET LOCAL TIME ZONE 'America/New_York'")
        assert care_views.activity(conn, "flat-a", start, end) == expected
    with acting(api_db_url, "highways") as conn:
        assert care_views.activity(conn, "flat-a", start, end) == {}


# --- timeline ------------------------------------------------------------------------------------------


def events(db_url: str, rows: list[tuple[int, datetime, dict[str, Any]]]) -> None:
    with psycopg.connect(db_url) as conn:
        for i, (ref, t, attrs) in enumerate(rows):
            conn.execute(
                "INSERT INTO events (device_ref, time, kind, event_key, attrs) VALUES (%s, %s, 'alarm', %s, %s)",
                (ref, t, f"k{i}", Jsonb(attrs)),
            )


def fall(alarm_id: int, status: str = "alarm_triggered") -> dict[str, Any]:
    return {"alarm_id": alarm_id, "alarm_type": "fall", "alarm_status": status}


@pytest.fixture
def day(db_url: str, refs: dict[str, int]) -> dict[str, int]:
    """One day in flat A (D to D + 24 h), the alerts' ids by name."""
    bed, bath, hall, kitchen = refs["a-bedroom"], refs["a-bathroom"], refs["a-hall"], refs["a-kitchen"]
    events(
        db_url,
        [
            (bed, D + 9 * H + timedelta(seconds=4), fall(1)),  # the live alarm ...
            (bed, D + 9 * H, fall(1)),  # ... and its re-sent history, stamped by the device: one fall
            (bed, D + 9 * H + 10 * M, fall(1, "alarm_deactivated")),
            (bed, D + 15 * H, fall(2)),  # a fall no alert was raised for
            (bed, D - H, fall(3)),  # before the window
        ],
    )
    readings(
        db_url,
        [
            # a visit already running when the window starts: not one that began in it
            (bath, D - 10 * M, {"occupied": True}),
            (bath, D + 10 * M, {"occupied": True}),
            (bath, D + 20 * M, {"occupied": False}),
            (bath, D + 10 * H, {"occupied": True}),
            (bath, D + 10 * H + 3 * M, {"occupied": True}),
            (bath, D + 10 * H + 4 * M, {"battery_pct": 90.0}),
            (bath, D + 10 * H + 6 * M, {"occupied": False}),
            (bath, D + 23 * H, {"occupied": True}),
            (bath, D + 23 * H + 12 * M, {"occupied": True}),  # still in there
            # night (00-05 UTC): up and about in the hall and kitchen, in bed and out of it in the bedroom
            (bed, D + 30 * M, {"in_bed": True, "occupied": True}),
            (bed, D + H, {"in_bed": True, "occupied": True}),  # the bedroom is a night room: no event
            (bed, D + H + 40 * M, {"in_bed": False, "occupied": True}),
            (hall, D + 2 * H, {"motion": True}),
            (hall, D + 2 * H + 10 * M, {"motion": True}),
            (hall, D + 2 * H + 20 * M, {"motion": True}),
            (kitchen, D + 2 * H + 25 * M, {"occupied": True}),
            (hall, D + 3 * H, {"motion": False}),
            (kitchen, D + 3 * H + 30 * M, {"occupied": True}),  # 65 min after the last: a second episode
            (hall, D + 6 * H, {"motion": True}),  # morning
            (bed, D + 7 * H, {"in_bed": True}),
            (bed, D + 7 * H + 30 * M, {"in_bed": False}),  # getting up in the morning
        ],
    )
    with psycopg.connect(db_url) as conn:
        return {
            "fall": alert(conn, "fall", D + 9 * H + timedelta(seconds=4), ref=bed, alarm="1", severity="critical"),
            "fall-only-alert": alert(conn, "fall", D + 20 * H, ref=bed, alarm="7", severity="critical"),
            "inactivity": alert(conn, "inactivity", D + 13 * H, ref=refs["a-living"], subject="flat:flat-a"),
            "offline": alert(conn, "offline", D + 14 * H, ref=hall),
            "simulated": alert(
                conn, "bathroom_dwell", D + 12 * H, ref=bath, subject="flat:flat-a:simulated", simulated=True
            ),
            "other-flat": alert(conn, "inactivity", D + 12 * H, ref=refs["b-living"], subject="flat:flat-b"),
            "earlier": alert(conn, "offline", D - H, ref=hall, state="resolved"),
        }


def test_timeline_of_a_day(db_url: str, api_db_url: str, day: dict[str, int]) -> None:
    expected = [
        TimelineItem(D + 23 * H, "bathroom", "bathroom", "Bathroom visit in progress, 12 min so far", None),
        TimelineItem(D + 20 * H, "bedroom", "fall", "Fall detected (bedroom)", day["fall-only-alert"]),
        TimelineItem(D + 15 * H, "bedroom", "fall", "Fall detected (bedroom)", None),
        TimelineItem(D + 14 * H, "hall", "alert", "Sensor offline (hall)", day["offline"]),
        TimelineItem(D + 13 * H, "living", "alert", "No activity alert", day["inactivity"]),
        TimelineItem(D + 10 * H, "bathroom", "bathroom", "Bathroom visit, 6 min", None, D + 10 * H + 6 * M),
        TimelineItem(D + 9 * H, "bedroom", "fall", "Fall detected (bedroom)", day["fall"]),
        TimelineItem(D + 3 * H + 30 * M, "kitchen", "night", "Up at night (kitchen)", None, D + 3 * H + 30 * M),
        TimelineItem(D + 2 * H, "hall", "night", "Up at night (hall, kitchen), 25 min", None, D + 2 * H + 25 * M),
        TimelineItem(D + H + 40 * M, "bedroom", "night", "Out of bed at night", None),
    ]
    with psycopg.connect(db_url) as conn:
        assert care_views.timeline(conn, "flat-a", D, D + 24 * H) == expected
        assert care_views.timeline(conn, "flat-a", D, D + 24 * H, limit=3) == expected[:3]
    for role in ("care", "admin"):
        with acting(api_db_url, role) as conn:
            assert care_views.timeline(conn, "flat-a", D, D + 24 * H) == expected
    with acting(api_db_url, "highways") as conn:
        assert care_views.timeline(conn, "flat-a", D, D + 24 * H) == []


def test_timeline_takes_the_welfare_rules_night_and_rooms(db_url: str, day: dict[str, int]) -> None:
    """A rule with other night hours (05-08) and window: the hall at 06:00 is then the night's only
    activity, and the morning's getting up at 07:30 is out of bed at night."""
    with psycopg.connect(db_url) as conn:
        items = care_views.timeline(conn, "flat-a", D, D + 24 * H, night=(5, 8), night_window=10 * M)
    night = [(i.time, i.label) for i in items if i.kind == "night"]
    assert night == [(D + 7 * H + 30 * M, "Out of bed at night"), (D + 6 * H, "Up at night (hall)")]
    with psycopg.connect(db_url) as conn:
        items = care_views.timeline(conn, "flat-a", D, D + 24 * H, night=(3, 3))  # no night hours at all
    assert [i for i in items if i.kind == "night"] == []


def test_the_defaults_are_the_welfare_rules() -> None:
    """store cannot import alerts: its copies of the welfare notions are kept in step here."""
    fields = WelfareRule.model_fields
    assert fields["night"].default == care_views.NIGHT
    assert fields["window"].default == care_views.NIGHT_WINDOW
    assert care_views.NIGHT_ROOMS == welfare.NIGHT_ROOMS
    assert care_views.BATHROOM == welfare.BATHROOM
    for window in ((0, 5), (22, 6), (0, 24), (7, 7), (21, 8), (23, 0)):
        start, length = welfare._window(window)
        assert care_views.night_hours(window) == [(start + i) % 24 for i in range(length)], window
