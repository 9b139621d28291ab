"""The alert lifecycle against a real TimescaleDB, as docs/alerts.md promises it: pending -> firing ->
acknowledged -> resolved with an audit trail, one open alert per rule and device enforced by the
database, repeats until acknowledged, escalation, silences, resolved notices, and the level rules
(battery, threshold hysteresis, invalid distances) on readings stored by the real writer.

Time is driven by hand: the engine's clock and `Engine.tick(conn, now)`, never by sleeping."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from alerts.engine import Engine, LifecycleError
from alerts.rules import RuleSet, parse_rules
from store import alerts as db
from store.records import Alert, DeviceSeen, GatewaySeen, ReadingRow, UplinkRecord, UplinkRow
from store.writer import IngestWriter
from tests.integration.alerts.test_engine import T0, Clock, Outbox, fall, register_devices
from tests.integration.store.records_factory import values

ROUTES = """\
version: 1
routes:
  highways: {webhook: {url: "http://127.0.0.1:9/hook"}}
  care: {webhook: {url: "http://127.0.0.1:9/care"}}
  duty: {webhook: {url: "http://127.0.0.1:9/duty"}}
"""
#: Falls escalate to `duty` after 10 minutes (and repeat every 2 minutes, the fall default); floods on
#: the water level fire at once; batteries need 6 hours low.
RULES = parse_rules(
    ROUTES
    + """\
rules:
  - {name: fall, category: fall, type: device_alarm, applies_to: {kind: care}, event: alarm,
     match: {alarm_type: fall}, route: care, escalate: [{after: 10m, route: duty}]}
  - {name: level, category: flood, type: threshold, applies_to: {kind: gully}, metric: level_mm,
     warning: {above: 500}, critical: {above: 800}, hysteresis: 30, route: highways}
  - {name: battery, category: battery_low, type: battery, applies_to: {kind: gully}, below_v: 3.1,
     clear_above_v: 3.2, for: 6h, route: highways}
"""
)
#: A flood that must hold 5 minutes before it fires (so an alert is pending first).
SLOW = parse_rules(
    ROUTES
    + """\
rules:
  - {name: level, category: flood, type: threshold, applies_to: {kind: gully}, metric: level_mm,
     warning: {above: 500}, hysteresis: 30, for: 5m, route: highways}
"""
)
#: A threshold rule with an escalation step, for a flood nobody acknowledges.
ESCALATING_FLOOD = parse_rules(
    ROUTES
    + """\
rules:
  - {name: level, category: flood, type: threshold, applies_to: {kind: gully}, metric: level_mm,
     warning: {above: 500}, route: highways, escalate: [{after: 10m, route: duty}]}
"""
)

MIN = timedelta(minutes=1)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """A gully (sensor 1000 mm above the pot floor) and a care radar; autocommit, so every engine pass
    commits as it would in the worker."""
    with psycopg.connect(db_url, autocommit=True) as c:
        register_devices(c)
        yield c


def measured(device: str, t: datetime, n: int, **measurements: Any) -> UplinkRecord:
    """One uplink carrying one reading with exactly these measurements."""
    key = f"tts:app/{device}:m:{n}"
    row = UplinkRow(t, key, "app", device, "tts", False, 2, n, b"\x00", "m", None, None, None, None, -80.0, 7.0, 1,
                    None, "lorawatch:x", None)  # fmt: skip
    return UplinkRecord(row, DeviceSeen(device, "tts", t, "app"), [ReadingRow(t, values(**measurements))], [],
                        [GatewaySeen("gw-1:", "gw-1", None, False, -80.0, 7.0, None, None)], "t", b"{}")  # fmt: skip


def level(minute: float, mm: float, n: int, *, valid: bool | None = True) -> UplinkRecord:
    """A gully reading at T0 + `minute` showing water `mm` above the pot floor."""
    return measured("gully-1", T0 + timedelta(minutes=minute), n, distance_mm=1000 - mm, distance_valid=valid)


def write(conn: psycopg.Connection, records: list[UplinkRecord]) -> None:
    IngestWriter(conn).write(records)


def only(conn: psycopg.Connection, rule: str | None = None) -> Alert:
    found = [a for a in db.list_alerts(conn, open_only=False) if rule is None or a.rule == rule]
    assert len(found) == 1, found
    return found[0]


def events(box: Outbox, event: str | None = None) -> list[tuple[str, str, str]]:
    """(rule, event, route) of every outbox row, oldest first."""
    return [(r.payload["alert"]["rule"], r.event, r.route) for r in box.rows if event is None or r.event == event]


def start_fall(conn: psycopg.Connection, rules: RuleSet = RULES) -> tuple[Engine, Clock, Outbox, Alert]:
    clock = Clock(T0)
    engine = Engine(rules, clock)
    write(conn, [fall(T0, 1)])
    assert engine.process(conn) == 1
    return engine, clock, Outbox(conn), only(conn, "fall")


def tick_at(engine: Engine, clock: Clock, conn: psycopg.Connection, at: datetime) -> None:
    clock.now = at
    engine.tick(conn, at)


# --- one open alert per rule and device ---------------------------------------------------------------


def test_the_database_refuses_a_second_open_alert_for_one_rule_and_device(conn: psycopg.Connection) -> None:
    _, _, _, alert = start_fall(conn)
    row = {**alert.as_json(), "opened_at": T0 + MIN}
    columns = ("rule", "category", "severity", "subject", "device_ref", "device_id", "kind", "opened_at")
    insert = f"INSERT INTO alerts ({', '.join(columns)}, state) VALUES ({', '.join(['%s'] * len(columns))}, %s)"
    for state in ("pending", "firing", "acknowledged"):
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, (*(row[c] for c in columns), state))
    conn.execute(insert, (*(row[c] for c in columns), "resolved"))  # closed ones may pile up
    conn.execute("UPDATE alerts SET state = 'resolved' WHERE id = %s", (alert.id,))
    conn.execute(insert, (*(row[c] for c in columns), "firing"))  # once it is over, a new one may open
    assert len(db.list_alerts(conn)) == 1


# --- the lifecycle and its audit trail -----------------------------------------------------------------


def test_pending_firing_acknowledged_resolved_each_in_the_log_with_who_when_and_why(
    conn: psycopg.Connection,
) -> None:
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(SLOW, clock)
    write(conn, [level(0, 600, 1)])
    engine.process(conn)
    assert only(conn).state == "pending" and box.rows == []
    tick_at(engine, clock, conn, T0 + 5 * MIN)
    alert = only(conn)
    assert (alert.state, alert.firing_at) == ("firing", T0 + 5 * MIN)
    assert events(box) == [("level", "opened", "highways")]

    clock.now = T0 + 12 * MIN
    acked = engine.acknowledge(conn, alert.id, "ann", "on my way")
    assert (acked.state, acked.acknowledged_by, acked.acknowledged_at) == ("acknowledged", "ann", T0 + 12 * MIN)
    assert acked.acknowledged_at is not None and acked.firing_at is not None
    assert acked.acknowledged_at - acked.firing_at == 7 * MIN  # time to acknowledge

    clock.now = T0 + 40 * MIN
    done = engine.resolve(conn, alert.id, "bob", "jetted the gully")
    assert (done.state, done.resolved_by, done.resolved_at) == ("resolved", "bob", T0 + 40 * MIN)
    assert done.resolved_at is not None and done.resolved_at - done.opened_at == 40 * MIN  # time to resolve
    assert events(box) == [("level", "opened", "highways"), ("level", "resolved", "highways")]

    log = db.alert_log(conn, alert.id)
    assert all(at is not None and actor for at, actor, *_ in log)
    transitions = [(actor, action, src, dst, note) for _, actor, action, src, dst, note in log if dst is not None]
    assert [(t[2], t[3]) for t in transitions] == [
        (None, "pending"),
        ("pending", "firing"),
        ("firing", "acknowledged"),
        ("acknowledged", "resolved"),
    ]
    assert transitions[0][0] == "engine" and transitions[0][4]  # why: the summary of what opened it
    assert transitions[1][0] in ("engine", "clock")
    assert transitions[2] == ("ann", "acknowledged", "firing", "acknowledged", "on my way")
    assert transitions[3] == ("bob", "resolved", "acknowledged", "resolved", "jetted the gully")
    notified = [action for _, _, action, *_ in log if action.startswith("notified")]
    assert notified == ["notified opened", "notified resolved"]


def test_acknowledging_stops_the_two_minute_fall_repeats(conn: psycopg.Connection) -> None:
    engine, clock, box, alert = start_fall(conn)
    for minute in range(1, 6):
        tick_at(engine, clock, conn, T0 + minute * MIN)
    assert events(box) == [("fall", "opened", "care"), ("fall", "repeat", "care"), ("fall", "repeat", "care")]
    engine.acknowledge(conn, alert.id, "carer", "with her now")
    for minute in range(6, 30):
        tick_at(engine, clock, conn, T0 + minute * MIN)
    assert len(box.rows) == 3  # no repeat, and no escalation either
    assert only(conn).state == "acknowledged"


def test_acknowledging_a_resolved_alert_is_refused_and_changes_nothing(conn: psycopg.Connection) -> None:
    engine, _clock, box, alert = start_fall(conn)
    engine.resolve(conn, alert.id, "carer", "false alarm")
    before = (only(conn), db.alert_log(conn, alert.id), len(box.rows))
    with pytest.raises(LifecycleError, match=rf"alert {alert.id} is resolved"):
        engine.acknowledge(conn, alert.id, "someone")
    with pytest.raises(LifecycleError, match="already resolved"):
        engine.resolve(conn, alert.id, "someone")
    with pytest.raises(LifecycleError, match="there is no alert 999"):
        engine.acknowledge(conn, 999, "someone")
    assert (only(conn), db.alert_log(conn, alert.id), len(box.rows)) == before


def test_a_person_resolving_a_notified_alert_sends_the_resolved_notice(conn: psycopg.Connection) -> None:
    engine, clock, box, alert = start_fall(conn)
    clock.now = T0 + MIN
    engine.resolve(conn, alert.id, "carer", "she is fine")
    assert events(box) == [("fall", "opened", "care"), ("fall", "resolved", "care")]
    resolved = box.rows[-1].payload
    assert resolved["event"] == "resolved" and resolved["alert"]["state"] == "resolved"
    assert resolved["notification"] == 2
    tick_at(engine, clock, conn, T0 + 20 * MIN)  # and nothing repeats or escalates after it
    assert len(box.rows) == 2


def test_a_person_resolving_an_alert_nobody_was_told_of_sends_nothing(conn: psycopg.Connection) -> None:
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(SLOW, clock)
    write(conn, [level(0, 600, 1)])
    engine.process(conn)
    alert = only(conn)
    assert alert.state == "pending"
    engine.resolve(conn, alert.id, "bob")
    assert box.rows == []


def test_resolving_by_hand_while_the_water_is_still_high_starts_afresh_after_for(conn: psycopg.Connection) -> None:
    clock, _box = Clock(T0), Outbox(conn)
    engine = Engine(SLOW, clock)
    write(conn, [level(0, 600, 1), level(6, 600, 2)])
    engine.process(conn)
    first = only(conn)
    assert first.state == "firing"
    clock.now = T0 + 7 * MIN
    engine.resolve(conn, first.id, "bob")
    write(conn, [level(8, 600, 3)])
    engine.process(conn)
    second = db.list_alerts(conn)
    assert [(a.state, a.opened_at) for a in second] == [("pending", T0 + 8 * MIN)]
    tick_at(engine, clock, conn, T0 + 12 * MIN)
    assert db.list_alerts(conn)[0].state == "pending"  # `for` again, counted from the new reading
    tick_at(engine, clock, conn, T0 + 13 * MIN)
    assert db.list_alerts(conn)[0].state == "firing"


def test_an_alert_acknowledged_while_pending_stays_acknowledged_when_for_passes(conn: psycopg.Connection) -> None:
    rules = parse_rules(
        ROUTES
        + """\
rules:
  - {name: level, category: flood, type: threshold, applies_to: {kind: gully}, metric: level_mm,
     warning: {above: 500}, for: 5m, route: highways, repeat_every: 2m, escalate: [{after: 10m, route: duty}]}
"""
    )
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(rules, clock)
    write(conn, [level(0, 600, 1)])
    engine.process(conn)
    clock.now = T0 + MIN
    engine.acknowledge(conn, only(conn).id, "ann", "crew on the way")
    for minute in range(2, 30):
        tick_at(engine, clock, conn, T0 + minute * MIN)
    alert = only(conn)
    assert (alert.state, alert.acknowledged_by) == ("acknowledged", "ann")
    assert events(box, "repeat") == [] and events(box, "escalated") == []


# --- repeats and the clock ----------------------------------------------------------------------------


def test_tick_with_an_explicit_now_repeats_a_fall_every_two_minutes(conn: psycopg.Connection) -> None:
    engine, _clock, box, _ = start_fall(conn)  # the engine's clock stays at T0
    for seconds in range(30, 6 * 60 + 1, 30):
        engine.tick(conn, T0 + timedelta(seconds=seconds))
    assert [e for _, e, _ in events(box)] == ["opened", "repeat", "repeat", "repeat"]  # at 2, 4 and 6 minutes


# --- escalation ---------------------------------------------------------------------------------------


def test_a_fall_nobody_acknowledges_escalates_to_duty_once_after_ten_minutes(conn: psycopg.Connection) -> None:
    engine, clock, box, alert = start_fall(conn)
    for seconds in range(30, 10 * 60, 30):
        tick_at(engine, clock, conn, T0 + timedelta(seconds=seconds))
    tick_at(engine, clock, conn, T0 + timedelta(minutes=9, seconds=59))
    assert events(box, "escalated") == []
    assert all(route == "care" for _, _, route in events(box))
    tick_at(engine, clock, conn, T0 + 10 * MIN)
    assert events(box, "escalated") == [("fall", "escalated", "duty")]
    for minute in range(11, 40):
        tick_at(engine, clock, conn, T0 + minute * MIN)
    assert events(box, "escalated") == [("fall", "escalated", "duty")]  # one step, sent once
    assert {route for _, e, route in events(box) if e != "escalated"} == {"care"}  # repeats go on to care
    esc = next(r for r in box.rows if r.event == "escalated")
    assert esc.target == "http://127.0.0.1:9/duty" and esc.payload["alert"]["id"] == alert.id
    assert only(conn).escalation_level == 1
    log = [(actor, action, note) for _, actor, action, _, _, note in db.alert_log(conn, alert.id)]
    assert ("clock", "escalated", "to duty") in log


def test_a_fall_acknowledged_within_ten_minutes_never_escalates(conn: psycopg.Connection) -> None:
    engine, clock, box, alert = start_fall(conn)
    for minute in range(1, 10):
        tick_at(engine, clock, conn, T0 + minute * MIN)
    clock.now = T0 + timedelta(minutes=9, seconds=30)
    engine.acknowledge(conn, alert.id, "carer")
    sent = len(box.rows)
    for minute in range(10, 60, 5):
        tick_at(engine, clock, conn, T0 + minute * MIN)
    assert events(box, "escalated") == [] and len(box.rows) == sent
    assert only(conn).escalation_level == 0


def test_a_flood_nobody_acknowledges_escalates_ten_minutes_after_it_fired(conn: psycopg.Connection) -> None:
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(ESCALATING_FLOOD, clock)
    write(conn, [level(0, 600, 1)])
    engine.process(conn)
    tick_at(engine, clock, conn, T0 + 9 * MIN)
    assert events(box) == [("level", "opened", "highways")]
    write(conn, [level(9.5, 650, 2)])  # still flooding: no new alert, no new notification
    engine.process(conn)
    tick_at(engine, clock, conn, T0 + 10 * MIN)
    tick_at(engine, clock, conn, T0 + 30 * MIN)
    assert events(box) == [("level", "opened", "highways"), ("level", "escalated", "duty")]


# --- silences -----------------------------------------------------------------------------------------


def silence(conn: psycopg.Connection, matchers: dict[str, str], start: datetime, end: datetime) -> int:
    return db.add_silence(conn, matchers, start, end, "test", "crew on site")


def test_a_silenced_fall_is_recorded_but_nothing_is_sent_until_the_silence_ends(conn: psycopg.Connection) -> None:
    silence(conn, {"category": "fall"}, T0 - MIN, T0 + 5 * MIN)
    engine, clock, box, alert = start_fall(conn)
    assert alert.state == "firing" and alert.category == "fall"  # recorded
    for seconds in range(30, 5 * 60, 30):
        tick_at(engine, clock, conn, T0 + timedelta(seconds=seconds))
    assert box.rows == []  # no opened and no repeats while it lasts
    assert only(conn).notifications == 0
    tick_at(engine, clock, conn, T0 + 5 * MIN)  # the silence has ended
    assert events(box) == [("fall", "opened", "care")]
    for seconds in (5 * 60 + 30, 6 * 60, 6 * 60 + 30):
        tick_at(engine, clock, conn, T0 + timedelta(seconds=seconds))
    assert events(box) == [("fall", "opened", "care")]  # notified once, not on every tick
    tick_at(engine, clock, conn, T0 + 7 * MIN)
    assert events(box) == [("fall", "opened", "care"), ("fall", "repeat", "care")]  # repeats go on from there


def test_a_silence_on_the_device_expired_early_lets_the_still_firing_flood_notify_once(
    conn: psycopg.Connection,
) -> None:
    sid = silence(conn, {"device_id": "gully-1"}, T0 - MIN, T0 + 2 * 60 * MIN)
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(RULES, clock)
    write(conn, [level(0, 600, 1), level(1, 900, 2)])  # warning, then critical
    engine.process(conn)
    assert only(conn, "level").severity == "critical" and box.rows == []
    tick_at(engine, clock, conn, T0 + 5 * MIN)
    assert box.rows == []
    assert db.expire_silence(conn, sid, T0 + 6 * MIN)
    tick_at(engine, clock, conn, T0 + 6 * MIN)
    tick_at(engine, clock, conn, T0 + 7 * MIN)
    assert events(box) == [("level", "opened", "highways")]
    assert box.rows[0].payload["alert"]["severity"] == "critical"


def test_an_alert_that_opens_and_ends_inside_a_silence_tells_nobody(conn: psycopg.Connection) -> None:
    silence(conn, {"category": "flood"}, T0 - MIN, T0 + 60 * MIN)
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(RULES, clock)
    write(conn, [level(0, 600, 1)])
    engine.process(conn)
    clock.now = T0 + 5 * MIN
    write(conn, [level(5, 100, 2)])
    engine.process(conn)
    for minute in (30, 61, 90):
        tick_at(engine, clock, conn, T0 + minute * MIN)
    assert only(conn, "level").state == "resolved"
    assert box.rows == []  # neither opened nor resolved


def test_silences_that_do_not_match_do_not_suppress(conn: psycopg.Connection) -> None:
    silence(conn, {"category": "flood"}, T0 - MIN, T0 + 60 * MIN)
    silence(conn, {"device_id": "gully-1"}, T0 - MIN, T0 + 60 * MIN)
    silence(conn, {"category": "fall", "device_id": "gully-1"}, T0 - MIN, T0 + 60 * MIN)  # matchers are AND-ed
    silence(conn, {"care_group": "flat-99"}, T0 - MIN, T0 + 60 * MIN)
    silence(conn, {"category": "fall"}, T0 - 60 * MIN, T0 - MIN)  # already over
    engine, clock, box, _ = start_fall(conn)
    tick_at(engine, clock, conn, T0 + 2 * MIN)
    assert events(box) == [("fall", "opened", "care"), ("fall", "repeat", "care")]


def test_a_silence_on_the_care_group_suppresses_that_groups_fall(conn: psycopg.Connection) -> None:
    silence(conn, {"care_group": "flat-12"}, T0 - MIN, T0 + 60 * MIN)
    engine, clock, box, _ = start_fall(conn)
    tick_at(engine, clock, conn, T0 + 30 * MIN)
    assert box.rows == []
    assert only(conn, "fall").state == "firing"


# --- level rules on stored readings --------------------------------------------------------------------


def test_a_low_battery_fires_after_six_hours_and_resolves_when_replaced(conn: psycopg.Connection) -> None:
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(RULES, clock)
    hour = timedelta(hours=1)
    write(conn, [measured("gully-1", T0, 1, battery_v=3.3)])
    engine.process(conn)
    write(conn, [measured("gully-1", T0 + i * hour, 1 + i, battery_v=3.0) for i in range(1, 6)])
    engine.process(conn)
    alert = only(conn, "battery")
    assert (alert.state, alert.category, alert.severity, alert.opened_at) == (
        "pending",
        "battery_low",
        "warning",
        T0 + hour,
    )
    assert box.rows == []  # a cold night's dip is what `for` is for
    tick_at(engine, clock, conn, T0 + 6 * hour + MIN)
    assert box.rows == []  # still under 6 h
    tick_at(engine, clock, conn, T0 + 7 * hour)
    assert only(conn, "battery").state == "firing"
    assert events(box) == [("battery", "opened", "highways")]
    clock.now = T0 + 8 * hour
    write(conn, [measured("gully-1", T0 + 8 * hour, 10, battery_v=3.15)])  # above below_v, under clear_above_v
    engine.process(conn)
    assert only(conn, "battery").state == "firing"
    write(conn, [measured("gully-1", T0 + 9 * hour, 11, battery_v=3.6)])  # a new battery
    engine.process(conn)
    done = only(conn, "battery")
    assert (done.state, done.resolved_at) == ("resolved", T0 + 9 * hour)
    assert events(box) == [("battery", "opened", "highways"), ("battery", "resolved", "highways")]


def test_a_low_battery_for_less_than_for_opens_nothing_anyone_hears_of(conn: psycopg.Connection) -> None:
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(RULES, clock)
    write(conn, [measured("gully-1", T0 + i * MIN * 30, 1 + i, battery_v=v) for i, v in enumerate([3.0, 3.05, 3.3])])
    engine.process(conn)
    tick_at(engine, clock, conn, T0 + 24 * 60 * MIN)
    assert db.list_alerts(conn) == [] and box.rows == []


def test_a_level_jittering_inside_the_hysteresis_band_is_one_alert(conn: psycopg.Connection) -> None:
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(RULES, clock)
    noise = [510, 495, 520, 480, 505, 471, 499, 515, 490, 502, 475, 530]  # the line at 500, band down to 470
    write(conn, [level(i, mm, 1 + i) for i, mm in enumerate(noise)])
    engine.process(conn)
    for i, mm in enumerate(noise):  # and the same again, one reading per pass
        write(conn, [level(len(noise) + i, mm, 100 + i)])
        engine.process(conn)
        tick_at(engine, clock, conn, T0 + (len(noise) + i) * MIN)
    alert = only(conn, "level")
    assert (alert.state, alert.severity) == ("firing", "warning")
    assert events(box) == [("level", "opened", "highways")]
    write(conn, [level(60, 460, 200)])  # out of the band: over
    engine.process(conn)
    assert only(conn, "level").state == "resolved"
    assert events(box) == [("level", "opened", "highways"), ("level", "resolved", "highways")]


def test_jitter_around_the_critical_line_raises_severity_once(conn: psycopg.Connection) -> None:
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(RULES, clock)
    noise = [600, 810, 790, 805, 775, 820, 780, 801]  # critical above 800, held down to 770
    for i, mm in enumerate(noise):  # one reading per pass, as they arrive live
        write(conn, [level(i, mm, 1 + i)])
        engine.process(conn)
    alert = only(conn, "level")
    assert (alert.state, alert.severity) == ("firing", "critical")
    assert [e for _, e, _ in events(box)] == ["opened", "severity"]
    severity_notes = [n for _, _, action, _, _, n in db.alert_log(conn, alert.id) if action == "severity"]
    assert severity_notes == ["warning -> critical"]


def test_an_invalid_distance_never_opens_a_flood_alert(conn: psycopg.Connection) -> None:
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(RULES, clock)
    # no echo: the sensor reports a tiny distance (water "at the sensor") but flags it invalid
    write(conn, [level(i, 990, 1 + i, valid=False) for i in range(10)])
    engine.process(conn)
    tick_at(engine, clock, conn, T0 + 60 * MIN)
    assert db.list_alerts(conn, open_only=False) == [] and box.rows == []
    write(conn, [level(61, 990, 20, valid=None), level(62, 990, 21, valid=True)])  # unflagged readings count
    engine.process(conn)
    assert only(conn, "level").severity == "critical"


def test_an_invalid_distance_does_not_move_an_open_flood(conn: psycopg.Connection) -> None:
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(RULES, clock)
    write(conn, [level(0, 600, 1), level(1, 0, 2, valid=False), level(2, 990, 3, valid=False)])
    engine.process(conn)
    alert = only(conn, "level")
    assert (alert.state, alert.severity, alert.value) == ("firing", "warning", 600)
    assert events(box) == [("level", "opened", "highways")]


# --- more of the lifecycle ------------------------------------------------------------------------------


def test_a_flood_that_slops_back_within_keep_firing_for_is_one_alert_and_the_clock_resolves_it(
    conn: psycopg.Connection,
) -> None:
    rules = parse_rules(
        ROUTES
        + """\
rules:
  - {name: level, category: flood, type: threshold, applies_to: {kind: gully}, metric: level_mm,
     warning: {above: 500}, keep_firing_for: 10m, route: highways}
"""
    )
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(rules, clock)
    write(conn, [level(0, 600, 1), level(2, 300, 2), level(8, 650, 3), level(9, 300, 4)])  # back within 10 min
    engine.process(conn)
    assert only(conn).state == "firing"
    tick_at(engine, clock, conn, T0 + 18 * MIN)
    assert only(conn).state == "firing"
    tick_at(engine, clock, conn, T0 + 19 * MIN)  # 10 minutes after it last went down
    done = only(conn)
    assert (done.state, done.resolved_at) == ("resolved", T0 + 19 * MIN)
    assert events(box) == [("level", "opened", "highways"), ("level", "resolved", "highways")]


def test_an_acknowledged_flood_that_recedes_resolves_with_a_notice(conn: psycopg.Connection) -> None:
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(RULES, clock)
    write(conn, [level(0, 600, 1)])
    engine.process(conn)
    engine.acknowledge(conn, only(conn).id, "ann")
    write(conn, [level(5, 100, 2)])
    engine.process(conn)
    done = only(conn)
    assert (done.state, done.acknowledged_by, done.resolved_at) == ("resolved", "ann", T0 + 5 * MIN)
    assert events(box) == [("level", "opened", "highways"), ("level", "resolved", "highways")]
    resolved = [(src, dst) for _, _, action, src, dst, _ in db.alert_log(conn, done.id) if action == "resolved"]
    assert resolved == [("acknowledged", "resolved")]


TWO_STEPS = parse_rules(
    ROUTES
    + """\
  manager: {webhook: {url: "http://127.0.0.1:9/manager"}}
rules:
  - {name: fall, category: fall, type: device_alarm, applies_to: {kind: care}, event: alarm,
     match: {alarm_type: fall}, route: care, repeat_every: null,
     escalate: [{after: 10m, route: duty}, {after: 20m, route: manager}]}
"""
)


def test_a_two_step_escalation_chain_goes_in_order(conn: psycopg.Connection) -> None:
    engine, clock, box, _ = start_fall(conn, TWO_STEPS)
    for minute in range(1, 20):
        tick_at(engine, clock, conn, T0 + minute * MIN)
    assert events(box) == [("fall", "opened", "care"), ("fall", "escalated", "duty")]
    tick_at(engine, clock, conn, T0 + 20 * MIN)
    tick_at(engine, clock, conn, T0 + 21 * MIN)
    assert events(box, "escalated") == [("fall", "escalated", "duty"), ("fall", "escalated", "manager")]
    assert only(conn).escalation_level == 2


def test_an_acknowledgement_between_the_steps_stops_the_chain(conn: psycopg.Connection) -> None:
    engine, clock, box, alert = start_fall(conn, TWO_STEPS)
    for minute in range(1, 15):
        tick_at(engine, clock, conn, T0 + minute * MIN)
    engine.acknowledge(conn, alert.id, "carer")
    for minute in range(15, 40):
        tick_at(engine, clock, conn, T0 + minute * MIN)
    assert events(box, "escalated") == [("fall", "escalated", "duty")]


def test_the_route_an_alert_escalated_to_hears_that_it_was_resolved(conn: psycopg.Connection) -> None:
    engine, clock, box, alert = start_fall(conn)
    tick_at(engine, clock, conn, T0 + 10 * MIN)
    assert events(box, "escalated") == [("fall", "escalated", "duty")]
    clock.now = T0 + 11 * MIN
    engine.resolve(conn, alert.id, "carer", "she is fine")
    assert sorted(route for _, _, route in events(box, "resolved")) == ["care", "duty"]


def test_a_silence_added_after_the_alert_was_notified_holds_back_its_repeats_and_escalation(
    conn: psycopg.Connection,
) -> None:
    engine, clock, box, _alert = start_fall(conn)
    tick_at(engine, clock, conn, T0 + 2 * MIN)
    assert [e for _, e, _ in events(box)] == ["opened", "repeat"]
    sid = silence(conn, {"device_id": "radar-1"}, T0 + 3 * MIN, T0 + 60 * MIN)
    for minute in range(3, 30):
        tick_at(engine, clock, conn, T0 + minute * MIN)
    assert [e for _, e, _ in events(box)] == ["opened", "repeat"]
    assert db.expire_silence(conn, sid, T0 + 30 * MIN)
    tick_at(engine, clock, conn, T0 + 30 * MIN)
    assert events(box)[2:] == [("fall", "escalated", "duty")]  # it is not a new alert: no second "opened"


def test_a_silence_holds_back_the_resolved_notice_too(conn: psycopg.Connection) -> None:
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(RULES, clock)
    write(conn, [level(0, 600, 1)])
    engine.process(conn)
    assert events(box) == [("level", "opened", "highways")]
    silence(conn, {"category": "flood"}, T0 + MIN, T0 + 60 * MIN)
    clock.now = T0 + 5 * MIN
    write(conn, [level(5, 100, 2)])
    engine.process(conn)
    assert only(conn).state == "resolved"
    assert events(box) == [("level", "opened", "highways")]  # nothing enqueued while the silence lasts


def test_a_low_battery_in_percent_fires_and_clears(conn: psycopg.Connection) -> None:
    rules = parse_rules(
        ROUTES
        + """\
rules:
  - {name: battery, category: battery_low, type: battery, applies_to: {kind: gully}, below_pct: 15,
     clear_above_pct: 25, route: highways}
"""
    )
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(rules, clock)
    write(conn, [measured("gully-1", T0 + i * MIN, 1 + i, battery_pct=p) for i, p in enumerate([40, 12, 20, 13])])
    engine.process(conn)
    assert only(conn).state == "firing"
    write(conn, [measured("gully-1", T0 + 10 * MIN, 20, battery_pct=100)])
    engine.process(conn)
    assert only(conn).state == "resolved"
    assert [e for _, e, _ in events(box)] == ["opened", "resolved"]


def test_resolving_an_offline_alert_by_hand_does_not_reopen_it_at_once_in_the_past(
    conn: psycopg.Connection,
) -> None:
    rules = parse_rules(
        ROUTES
        + """\
rules:
  - {name: offline, category: offline, type: offline, applies_to: {kind: gully}, expected_interval: 15m,
     missed: 3, route: highways}
"""
    )
    clock, box = Clock(T0), Outbox(conn)
    engine = Engine(rules, clock)
    write(conn, [level(0, 100, 1)])
    engine.process(conn)
    tick_at(engine, clock, conn, T0 + 46 * MIN)
    first = only(conn)
    assert (first.category, first.opened_at) == ("offline", T0 + 45 * MIN)
    clock.now = T0 + 50 * MIN
    engine.resolve(conn, first.id, "bob", "sensor taken in for repair")
    tick_at(engine, clock, conn, T0 + 51 * MIN)
    reopened = [a for a in db.list_alerts(conn, open_only=False) if a.id != first.id]
    assert all(a.opened_at >= T0 + 50 * MIN for a in reopened)  # never opened before the last was closed
    assert [e for _, e, _ in events(box)] == ["opened", "resolved"]  # and not re-announced at once
