"""The flood-risk overview's data, on the real database under the API's roles: every visible gully
with its newest reading, level, fill, trend and open alerts; row-level security decides which gullies
exist; gullies heard long ago, never heard, or heard without measuring are listed too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from store import access
from store.overview import LOOKBACK, RECENT, GullyStatus, OpenAlert, gully_overview
from tests.integration.api.seed_devices import register, uplinks

#: The newest reading of the fleet: in the past, since ingest never lets last_seen pass its clock.
T = (datetime.now(UTC) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
STEP = timedelta(minutes=15)


def every_15_min(hours: float, end: datetime = T) -> list[datetime]:
    n = int(hours * 4)
    return [end - STEP * (n - i) for i in range(n + 1)]


def alert(db_url: str, device: str, category: str, severity: str, state: str, *, simulated: bool = False) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "INSERT INTO alerts (rule, category, severity, subject, device_ref, device_id, application_id, kind, "
            "state, simulated, opened_at) SELECT %s, %s, %s, 'device:' || id, id, device_id, application_id, "
            "kind, %s, %s, %s FROM devices WHERE device_id = %s RETURNING id",
            (f"r-{category}-{state}-{simulated}", category, severity, state, simulated, T - timedelta(hours=2), device),
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def fleet(db_url: str) -> dict[str, int]:
    register(
        db_url,
        "rising,app,gully,Rising St,1000,400,,\n"
        "never,app,gully,,1000,400,,\n"
        "once,app,gully,,1000,400,,\n"
        "old,app,gully,,1000,400,,\n"
        "bare,app,gully,,,,,\n"
        "quiet,app,gully,,1200,300,,\n"
        "twin,app,gully,,1000,400,,\n"
        "twin,other,gully,,1000,400,,\n"
        "was-care,app,care,,,,r1,g1\n"
        "care-1,app,care,,,,r2,g1\n",
    )
    register(db_url, "was-care,app,gully,,1000,400,,\n")  # reassigned: stays sealed (care history)
    # Rising 10 mm every 15 minutes (40 mm/h) for 3 hours; the newest reading has no battery value.
    times = every_15_min(3)
    readings: list[dict[str, object]] = [
        {"distance_mm": 700.0 - 10 * i, "battery_v": 3.5, "battery_pct": 80.0} for i in range(len(times))
    ]
    readings[-1] = {"distance_mm": 700.0 - 10 * (len(times) - 1)}
    uplinks(db_url, "rising", times, readings=readings)
    uplinks(db_url, "once", [T - timedelta(minutes=5)], readings=[{"distance_mm": 550.0, "battery_v": 3.3}])
    # Heard last 40 days ago, in an older chunk than the rest.
    old = every_15_min(1, T - timedelta(days=40))
    uplinks(db_url, "old", old, readings=[{"distance_mm": 590.0 + i} for i in range(len(old))])
    bare = every_15_min(1)
    uplinks(db_url, "bare", bare, readings=[{"distance_mm": 800.0 - 20 * i} for i in range(len(bare))])
    # Measured three hours ago, then only uplinks without a reading (a status frame, say).
    uplinks(db_url, "quiet", [T - timedelta(hours=3)], readings=[{"distance_mm": 880.0}], f_cnts=[1])
    uplinks(db_url, "quiet", [T - timedelta(minutes=30)], f_cnts=[2])
    uplinks(db_url, "twin", [T], readings=[{"distance_mm": 600.0}])
    uplinks(db_url, "twin", [T], app="other", readings=[{"distance_mm": 500.0}])
    uplinks(db_url, "was-care", [T], readings=[{"distance_mm": 600.0}])
    uplinks(db_url, "care-1", [T], readings=[{"occupied": True}])
    return {
        "flood": alert(db_url, "rising", "flood", "warning", "firing"),
        "ack": alert(db_url, "rising", "blockage", "warning", "acknowledged"),
        "resolved": alert(db_url, "rising", "silt", "warning", "resolved"),
        "simulated": alert(db_url, "rising", "sensor_fault", "warning", "firing", simulated=True),
        "sealed": alert(db_url, "was-care", "flood", "critical", "firing"),
        "care": alert(db_url, "care-1", "inactivity", "warning", "firing"),
    }


def overview(api_db_url: str, role: str) -> dict[str, GullyStatus]:
    with psycopg.connect(api_db_url) as conn:
        access.act_as(conn, role)
        rows = gully_overview(conn)
    assert [(g.device_id, g.application_id) for g in rows] == sorted((g.device_id, g.application_id) for g in rows)
    return {g.label: g for g in rows}


def test_highways_sees_every_gully_it_may_with_its_newest_reading(api_db_url: str, fleet: dict[str, int]) -> None:
    found = overview(api_db_url, "highways")
    assert sorted(found) == [
        "app/bare", "app/never", "app/old", "app/once", "app/quiet", "app/rising", "app/twin", "other/twin",
    ]  # fmt: skip
    g = found["app/rising"]
    assert (g.name, g.sensor_height_mm, g.outlet_invert_mm) == ("Rising St", 1000.0, 400.0)
    assert g.last_seen == g.reading_time == T
    assert g.distance_mm == 580.0
    assert g.level_mm == 420.0
    assert g.fill_pct == pytest.approx(100 * 20 / 600)
    assert g.trend_mm_per_h == pytest.approx(40.0)
    # The newest reading had no battery: the newest known one within the lookback.
    assert g.battery_v == pytest.approx(3.5)
    assert g.battery_pct == 80.0
    assert (found["app/twin"].distance_mm, found["other/twin"].distance_mm) == (600.0, 500.0)


def test_open_alerts_only_real_and_not_resolved(api_db_url: str, fleet: dict[str, int]) -> None:
    g = overview(api_db_url, "highways")["app/rising"]
    assert [a.alert_id for a in g.open_alerts] == [fleet["flood"], fleet["ack"]]
    assert isinstance(g.open_alerts[0], OpenAlert)
    assert (g.open_alerts[0].category, g.open_alerts[0].severity, g.open_alerts[0].state) == (
        "flood",
        "warning",
        "firing",
    )
    assert g.open_alerts[1].state == "acknowledged"
    assert all(not x.open_alerts for k, x in overview(api_db_url, "highways").items() if k != "app/rising")


def test_a_sealed_gully_is_for_admin_only(api_db_url: str, fleet: dict[str, int]) -> None:
    admin = overview(api_db_url, "admin")
    assert "app/was-care" in admin
    assert [a.alert_id for a in admin["app/was-care"].open_alerts] == [fleet["sealed"]]
    assert "app/care-1" not in admin  # not a gully, whoever asks
    assert "app/was-care" not in overview(api_db_url, "highways")


def test_gullies_without_a_recent_measurement(api_db_url: str, fleet: dict[str, int]) -> None:
    found = overview(api_db_url, "highways")
    never = found["app/never"]
    assert never.last_seen is None
    assert (never.reading_time, never.distance_mm, never.level_mm, never.fill_pct, never.trend_mm_per_h) == (
        None,
        None,
        None,
        None,
        None,
    )
    once = found["app/once"]
    assert once.distance_mm == 550.0
    assert once.fill_pct == pytest.approx(100 * 50 / 600)
    assert once.battery_v == pytest.approx(3.3)
    assert once.trend_mm_per_h is None  # one reading is no trend
    # Heard long before the rest of the fleet (beyond RECENT): still found, in its own chunk.
    old = found["app/old"]
    assert old.last_seen is not None
    assert T - old.last_seen > RECENT
    assert old.distance_mm == 594.0
    assert old.trend_mm_per_h == pytest.approx(-4.0)  # distance up 1 mm every 15 minutes
    # Geometry not registered: no level or fill, but the trend needs none.
    bare = found["app/bare"]
    assert (bare.distance_mm, bare.level_mm, bare.fill_pct) == (720.0, None, None)
    assert bare.trend_mm_per_h == pytest.approx(80.0)
    # Measured 3 h before its last uplink (beyond LOOKBACK): its reading is unknown, not stale data.
    quiet = found["app/quiet"]
    assert quiet.last_seen == T - timedelta(minutes=30)
    assert T - timedelta(hours=3) < quiet.last_seen - LOOKBACK
    assert (quiet.reading_time, quiet.distance_mm) == (None, None)


def test_nothing_heard_yet(api_db_url: str, db_url: str) -> None:
    register(db_url, "g-1,app,gully,,1000,400,,\n")
    [g] = overview(api_db_url, "highways").values()
    assert (g.device_id, g.last_seen, g.reading_time) == ("g-1", None, None)


def test_without_a_role_it_is_refused(api_db_url: str, fleet: dict[str, int]) -> None:
    with psycopg.connect(api_db_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        gully_overview(conn)  # as lorawatch_api itself, which holds no data grants
