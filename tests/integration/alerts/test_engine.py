"""The alert engine against a real TimescaleDB: rules on stored readings and events via the change
feed, the clock, the lifecycle in the database, notifications decided once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from alerts.engine import Engine
from alerts.rules import parse_rules
from store import alerts as db
from store import outbox
from store.records import DeviceSeen, EventRow, GatewaySeen, OutboxRow, ReadingRow, UplinkRecord, UplinkRow
from store.writer import IngestWriter
from tests.integration.store.records_factory import values

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
RULES = parse_rules("""\
version: 1
routes:
  highways: {webhook: {url: "http://127.0.0.1:9/hook"}}
  care: {webhook: {url: "http://127.0.0.1:9/care"}}
rules:
  - {name: fill, category: flood, type: threshold, applies_to: {kind: gully}, metric: fill_pct,
     warning: {above: 60}, critical: {above: 85}, hysteresis: 5, for: 5m, keep_firing_for: 10m, route: highways}
  - {name: fall, category: fall, type: device_alarm, applies_to: {kind: care}, event: alarm,
     match: {alarm_type: fall}, route: care}
  - {name: offline, category: offline, type: offline, applies_to: {kind: gully}, expected_interval: 15m,
     missed: 3, route: highways}
""")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Outbox:
    """What the engine put in the real outbox table."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    @property
    def rows(self) -> list[OutboxRow]:
        return outbox.rows(self.conn)

    def events(self) -> list[tuple[str, str]]:
        return [(r.payload["alert"]["rule"], r.event) for r in self.rows]


def register_devices(conn: psycopg.Connection) -> None:
    """A gully (sensor 1000 mm above the pot floor, outlet invert at 200 mm) and a care radar whose
    name is the kind a care home might set (it must never reach a notification)."""
    conn.execute(
        "INSERT INTO devices (application_id, device_id, kind, name, sensor_height_mm, outlet_invert_mm) "
        "VALUES ('app', 'gully-1', 'gully', 'High St', 1000, 200)"
    )
    conn.execute(
        "INSERT INTO devices (application_id, device_id, kind, name, care_room, care_group) "
        "VALUES ('app', 'radar-1', 'care', 'Mrs Example', 'bathroom', 'flat-12')"
    )


@pytest.fixture
def conn(db_url: str):
    with psycopg.connect(db_url) as c:
        register_devices(c)
        c.commit()
        yield c


def uplink(
    device: str,
    t: datetime,
    n: int,
    *,
    distance: float | None = None,
    alarm: dict[str, Any] | None = None,
    simulated: bool = False,
) -> UplinkRecord:
    key = f"tts:app/{device}:{'as:up:sim' if simulated else 's'}:{n}"
    readings = [ReadingRow(t, values(distance_mm=distance, battery_v=3.6))] if distance is not None else []
    events = []
    if alarm is not None:
        import json

        events = [EventRow(alarm.pop("at", t), "alarm", f"a{alarm['alarm_id']}", json.dumps(alarm), key)]
    row = UplinkRow(t, key, "app", device, "tts", simulated, 2, n, b"\x00", "s", None, None, None, None, -80.0, 7.0, 1,
                    None, "lorawatch:x", None)  # fmt: skip
    return UplinkRecord(row, DeviceSeen(device, "tts", t, "app"), readings, events,
                        [GatewaySeen("gw-1:", "gw-1", None, False, -80.0, 7.0, None, None)], "t", b"{}")  # fmt: skip


def fill_distance(pct: float) -> float:
    """The distance reading that gives `pct` fill for a 1000 mm sensor over a 200 mm invert."""
    return 1000 - (200 + pct / 100 * 800)


def write(conn: psycopg.Connection, records: list[UplinkRecord]) -> None:
    IngestWriter(conn).write(records)


def gully(minutes_pct: list[tuple[int, float]], start: int = 1) -> list[UplinkRecord]:
    return [
        uplink("gully-1", T0 + timedelta(minutes=m), start + i, distance=fill_distance(p))
        for i, (m, p) in enumerate(minutes_pct)
    ]


def test_a_flood_opens_fires_after_for_notifies_once_and_resolves(conn: psycopg.Connection) -> None:
    clock, outbox = Clock(T0 + timedelta(minutes=1)), Outbox(conn)
    engine = Engine(RULES, clock)
    write(conn, gully([(0, 40), (1, 70)]))
    assert engine.process(conn) == 1
    (alert,) = db.list_alerts(conn)
    assert (alert.rule, alert.state, alert.severity, alert.opened_at) == (
        "fill",
        "pending",
        "warning",
        T0 + timedelta(minutes=1),
    )
    assert outbox.rows == []  # pending: nobody is told yet
    write(conn, gully([(6, 90)], start=3))
    clock.now = T0 + timedelta(minutes=6)
    engine.process(conn)
    (alert,) = db.list_alerts(conn)
    assert (alert.state, alert.severity, alert.firing_at) == ("firing", "critical", T0 + timedelta(minutes=6))
    assert outbox.events() == [("fill", "opened")]
    payload = outbox.rows[0].payload
    assert payload["where"]["name"] == "High St" and payload["alert"]["category"] == "flood"
    write(conn, gully([(8, 20), (20, 20)], start=4))
    engine.process(conn)
    assert db.list_alerts(conn) == []
    (done,) = db.list_alerts(conn, open_only=False)
    assert (done.state, done.resolved_at) == ("resolved", T0 + timedelta(minutes=20))
    assert outbox.events() == [("fill", "opened"), ("fill", "resolved")]
    actions = [row[2] for row in db.alert_log(conn, done.id)]
    assert actions == ["opened", "firing", "notified opened", "resolved", "notified resolved"]


def test_one_spike_never_notifies(conn: psycopg.Connection) -> None:
    outbox = Outbox(conn)
    engine = Engine(RULES, Clock(T0))
    write(conn, gully([(0, 95), (1, 30)]))
    engine.process(conn)
    assert outbox.rows == [] and db.list_alerts(conn) == []


def test_a_restarted_engine_neither_misses_nor_repeats(conn: psycopg.Connection) -> None:
    outbox = Outbox(conn)
    write(conn, gully([(0, 90)]))
    Engine(RULES, Clock(T0)).process(conn)
    write(conn, gully([(6, 90)], start=2))
    again = Engine(RULES, Clock(T0 + timedelta(minutes=6)))  # a new process: state from the db
    assert again.process(conn) == 1
    assert again.process(conn) == 0
    assert outbox.events() == [("fill", "opened")]
    assert len(db.list_alerts(conn, open_only=False)) == 1


def test_the_clock_fires_when_no_more_data_comes(conn: psycopg.Connection) -> None:
    outbox = Outbox(conn)
    clock = Clock(T0)
    engine = Engine(RULES, clock)
    write(conn, gully([(0, 90)]))
    engine.process(conn)
    engine.tick(conn, T0 + timedelta(minutes=4))
    assert outbox.rows == []
    engine.tick(conn, T0 + timedelta(minutes=5))
    (alert,) = db.list_alerts(conn)
    assert alert.state == "firing" and outbox.events() == [("fill", "opened")]


def fall(
    t: datetime, n: int, status: str = "alarm_triggered", alarm_id: int = 7, at: datetime | None = None
) -> UplinkRecord:
    alarm: dict[str, Any] = {"alarm_id": alarm_id, "alarm_type": "fall", "alarm_status": status}
    if at is not None:
        alarm["at"] = at
    return uplink("radar-1", t, n, alarm=alarm)


def test_a_fall_fires_at_once_with_the_room_never_the_name_and_its_history_is_not_a_second(
    conn: psycopg.Connection,
) -> None:
    outbox = Outbox(conn)
    clock = Clock(T0)
    engine = Engine(RULES, clock)
    write(conn, [fall(T0, 1)])
    engine.process(conn)
    (alert,) = db.list_alerts(conn)
    assert (alert.category, alert.state, alert.device_alarm_id, alert.kind) == ("fall", "firing", "7", "care")
    payload = outbox.rows[0].payload
    assert payload["where"] == {"care_room": "bathroom", "care_group": "flat-12"}
    assert "Mrs Example" not in str(payload)
    write(conn, [fall(T0 + timedelta(minutes=5), 2, at=T0 - timedelta(seconds=30))])  # re-sent history of alarm 7
    write(conn, [fall(T0 + timedelta(minutes=6), 3, status="alarm_deactivated")])
    engine.process(conn)
    assert len(db.list_alerts(conn, open_only=False)) == 1
    (alert,) = db.list_alerts(conn)
    assert alert.state == "firing" and "device_cleared_at" in alert.details  # a person must acknowledge


def test_falls_repeat_every_two_minutes_until_acknowledged(conn: psycopg.Connection) -> None:
    outbox = Outbox(conn)
    clock = Clock(T0)
    engine = Engine(RULES, clock)
    write(conn, [fall(T0, 1)])
    engine.process(conn)
    clock.now = T0 + timedelta(minutes=1)
    engine.tick(conn)
    clock.now = T0 + timedelta(minutes=2)
    engine.tick(conn)
    clock.now = T0 + timedelta(minutes=3)
    engine.tick(conn)
    assert outbox.events() == [("fall", "opened"), ("fall", "repeat")]
    (alert,) = db.list_alerts(conn)
    db.update_alert(conn, alert.id, {"state": "acknowledged", "acknowledged_by": "carer", "acknowledged_at": clock.now})
    conn.commit()
    clock.now = T0 + timedelta(minutes=10)
    engine.tick(conn)
    assert outbox.events() == [("fall", "opened"), ("fall", "repeat")]


def test_two_engines_at_once_keep_one_alert(db_url: str, conn: psycopg.Connection) -> None:
    outbox = Outbox(conn)
    write(conn, [fall(T0, n, alarm_id=n) for n in range(1, 6)])
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with psycopg.connect(db_url) as c:
                Engine(RULES, Clock(T0)).process(c)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(db.list_alerts(conn, open_only=False)) == 1
    assert outbox.events() == [("fall", "opened")]


def test_offline_on_the_clock_and_back(conn: psycopg.Connection) -> None:
    outbox = Outbox(conn)
    engine = Engine(RULES, Clock(T0))
    write(conn, gully([(0, 10)]))
    engine.process(conn)
    engine.tick(conn, T0 + timedelta(minutes=44))
    assert db.list_alerts(conn) == []
    engine.tick(conn, T0 + timedelta(minutes=46))
    (alert,) = db.list_alerts(conn)
    assert (alert.category, alert.opened_at) == ("offline", T0 + timedelta(minutes=45))
    write(conn, gully([(60, 10)], start=2))
    engine.process(conn)
    assert db.list_alerts(conn) == []
    assert outbox.events() == [("offline", "opened"), ("offline", "resolved")]


def test_history_whose_flood_already_ended_is_recorded_late_and_tells_nobody(conn: psycopg.Connection) -> None:
    outbox = Outbox(conn)
    engine = Engine(RULES, Clock(T0 + timedelta(hours=5)))
    write(conn, gully([(0, 20), (10, 90), (20, 90), (30, 20), (60, 20)]))  # a backfilled hour
    engine.process(conn)
    (alert,) = db.list_alerts(conn, open_only=False)
    assert (alert.state, alert.late) == ("resolved", True)
    assert outbox.rows == []


def test_a_simulated_fall_is_recorded_as_simulated_notifies_nobody_and_leaves_the_real_one_alone(
    conn: psycopg.Connection,
) -> None:
    outbox = Outbox(conn)
    engine = Engine(RULES, Clock(T0))
    sim = uplink("radar-1", T0, 1, alarm={"alarm_id": 9, "alarm_type": "fall", "alarm_status": "alarm_triggered"},
                 simulated=True)  # fmt: skip
    write(conn, [sim])
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)  # never in the real tables
    engine.process(conn)
    (alert,) = db.list_alerts(conn)
    assert (alert.category, alert.simulated) == ("fall", True)
    assert alert.subject.endswith(":simulated")
    assert outbox.rows == []
    write(conn, [fall(T0 + timedelta(minutes=1), 2)])  # a real fall of the same device
    engine.process(conn)
    alerts = db.list_alerts(conn)
    assert sorted(a.simulated for a in alerts) == [False, True]
    assert outbox.events() == [("fall", "opened")]
    assert all(r.payload["alert"]["simulated"] is False for r in outbox.rows)
