"""The detectors through the real engine and store: gateway-aware offline with inhibition, flood
confirmation, welfare per flat, and learned state that survives a worker restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.engine import Engine
from alerts.rules import parse_rules
from store import alerts as db
from store.records import Alert, DeviceSeen, GatewaySeen, ReadingRow, UplinkRecord, UplinkRow
from store.writer import IngestWriter
from tests.integration.alerts.test_engine import Clock
from tests.integration.store.records_factory import values

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
RULES = parse_rules("""\
version: 1
routes:
  highways: {webhook: {url: "http://127.0.0.1:9/hook"}}
  care: {webhook: {url: "http://127.0.0.1:9/care"}}
rules:
  - {name: flood, category: flood, type: flood, applies_to: {kind: gully}, warning: {above: 60},
     critical: {above: 85}, keep_firing_for: 30m, route: highways}
  - {name: offline, category: offline, type: offline, applies_to: {kind: gully}, expected_interval: 15m,
     missed: 3, route: highways}
  - {name: gateway, category: gateway_offline, type: gateway_offline, applies_to: {kind: gully}, route: highways}
  - {name: night, category: night_activity, type: welfare, watch: night_activity, applies_to: {kind: care},
     route: care}
""")
# gully-1..3 are heard only through gw-a, gully-4 and gully-5 only through gw-b.
GULLIES = {"gully-1": "gw-a", "gully-2": "gw-a", "gully-3": "gw-a", "gully-4": "gw-b", "gully-5": "gw-b"}


@pytest.fixture
def conn(db_url: str):
    with psycopg.connect(db_url) as c:
        for device in GULLIES:
            c.execute(
                "INSERT INTO devices (application_id, device_id, kind, sensor_height_mm, outlet_invert_mm) "
                "VALUES ('app', %s, 'gully', 1000, 200)",
                (device,),
            )
        for room in ("bedroom", "hall", "kitchen"):
            c.execute(
                "INSERT INTO devices (application_id, device_id, kind, care_room, care_group) "
                "VALUES ('app', %s, 'care', %s, 'flat-7')",
                (f"care-{room}", room),
            )
        c.commit()
        yield c


_counter = iter(range(1, 10**9))


def uplink(device: str, t: datetime, *, distance: float | None = 800.0, motion: bool | None = None) -> UplinkRecord:
    n = next(_counter)
    key = f"tts:app/{device}:s:{n}"
    fields = {"distance_mm": distance} if device.startswith("gully") else {"motion": motion}
    readings = [ReadingRow(t, values(**fields))]
    gateway = GULLIES.get(device, "gw-care")
    row = UplinkRow(t, key, "app", device, "tts", False, 2, n, b"\x00", "s", None, None, None, None, -80.0, 7.0, 1,
                    None, "lorawatch:x", None)  # fmt: skip
    heard = [GatewaySeen(f"{gateway}:", gateway, None, False, -80.0, 7.0, None, None)]
    return UplinkRecord(row, DeviceSeen(device, "tts", t, "app"), readings, [], heard, "t", b"{}")


def run(conn: psycopg.Connection, engine: Engine, records: list[UplinkRecord], until: datetime) -> None:
    """Write the records in time order, evaluating each batch, with clock passes wherever a state is
    due: what `lorawatch score` does."""
    records = sorted(records, key=lambda r: r.uplink.time)
    for record in records:
        due = engine.next_due(conn)
        while due is not None and due < record.uplink.time:
            engine.tick(conn, due)
            due = engine.next_due(conn)
        IngestWriter(conn).write([record])
        while engine.process(conn):
            pass
    due = engine.next_due(conn)
    while due is not None and due <= until:
        engine.tick(conn, due)
        due = engine.next_due(conn)
    engine.tick(conn, until)


def every(device: str, start: datetime, end: datetime, phase_min: int = 0, **kw: object) -> list[UplinkRecord]:
    out, t = [], start + timedelta(minutes=phase_min)
    while t < end:
        out.append(uplink(device, t, **kw))  # type: ignore[arg-type]
        t += timedelta(minutes=15)
    return out


def alerts(conn: psycopg.Connection) -> list[Alert]:
    return sorted(db.list_alerts(conn, open_only=False), key=lambda a: a.opened_at)


def test_a_gateway_outage_is_one_gateway_alert_and_holds_back_its_devices_offline(conn: psycopg.Connection) -> None:
    engine = Engine(RULES, Clock(T0), notify=False)
    down, up = T0 + timedelta(hours=3), T0 + timedelta(hours=7)
    records = []
    for i, (device, gateway) in enumerate(GULLIES.items()):
        if gateway == "gw-a":  # silent while gw-a is down, then heard again
            records += every(device, T0, down, phase_min=i * 4) + every(device, up, T0 + timedelta(hours=9), i * 4)
        else:
            records += every(device, T0, T0 + timedelta(hours=9), phase_min=i * 4)
    run(conn, engine, records, T0 + timedelta(hours=9))
    found = alerts(conn)
    assert [(a.category, a.gateway_id) for a in found] == [("gateway_offline", "gw-a")]
    gw = found[0]
    assert down + timedelta(minutes=30) <= gw.opened_at <= down + timedelta(minutes=45)
    assert gw.state == "resolved" and gw.resolved_at is not None and up <= gw.resolved_at <= up + timedelta(minutes=15)


def test_a_device_silent_while_its_gateway_carries_its_neighbours_is_offline(conn: psycopg.Connection) -> None:
    engine = Engine(RULES, Clock(T0), notify=False)
    quiet = T0 + timedelta(hours=2)
    records = []
    for i, device in enumerate(GULLIES):
        end = quiet if device == "gully-2" else T0 + timedelta(hours=5)
        records += every(device, T0, end, phase_min=i * 3)
    run(conn, engine, records, T0 + timedelta(hours=5))
    found = alerts(conn)
    assert [(a.category, a.device_id) for a in found] == [("offline", "gully-2")]
    assert quiet + timedelta(minutes=30) <= found[0].opened_at <= quiet + timedelta(minutes=45)


def test_a_device_gone_quiet_during_an_outage_is_offline_once_the_gateway_is_back(conn: psycopg.Connection) -> None:
    engine = Engine(RULES, Clock(T0), notify=False)
    down, up, end = T0 + timedelta(hours=3), T0 + timedelta(hours=6), T0 + timedelta(hours=9)
    records = []
    for i, (device, gateway) in enumerate(GULLIES.items()):
        records += every(device, T0, down if gateway == "gw-a" else end, phase_min=i * 4)
        if gateway == "gw-a" and device != "gully-3":  # gully-3 never comes back
            records += every(device, up, end, phase_min=i * 4)
    run(conn, engine, records, end)
    found = [(a.category, a.gateway_id or a.device_id) for a in alerts(conn)]
    assert found == [("gateway_offline", "gw-a"), ("offline", "gully-3")]
    offline = alerts(conn)[1]
    # a full silence counted from the gateway's return: its devices get an interval to be heard again
    assert offline.opened_at == up + timedelta(minutes=45) and offline.state == "firing"


def fill(pct: float) -> float:
    return 1000 - (200 + pct / 100 * 800)


def test_one_high_echo_never_opens_a_flood_but_two_readings_do(conn: psycopg.Connection) -> None:
    engine = Engine(RULES, Clock(T0), notify=False)
    t = [T0 + timedelta(minutes=5 * i) for i in range(12)]
    levels = [2, 2, 70, 2, 2, 40, 62, 66, 72, 50, 20, 5]
    run(conn, engine, [uplink("gully-1", at, distance=fill(p)) for at, p in zip(t, levels, strict=True)], t[-1])
    floods = [a for a in alerts(conn) if a.category == "flood"]
    assert len(floods) == 1
    assert floods[0].opened_at == t[7]  # the second reading running in the level
    assert floods[0].state == "firing"  # 30 minutes below the level have not passed yet at t[11]
    engine.tick(conn, t[10] + timedelta(minutes=30))
    assert db.get_alert(conn, floods[0].id).state == "resolved"  # type: ignore[union-attr]


def test_flood_confirmation_survives_a_worker_restart(conn: psycopg.Connection) -> None:
    first = Engine(RULES, Clock(T0), notify=False)
    run(conn, first, [uplink("gully-1", T0, distance=fill(70))], T0)
    assert not alerts(conn)
    second = Engine(RULES, Clock(T0), notify=False)  # a new worker: all it knows is in the database
    run(conn, second, [uplink("gully-1", T0 + timedelta(minutes=5), distance=fill(72))], T0 + timedelta(minutes=5))
    assert [a.category for a in alerts(conn)] == ["flood"]


def test_night_wandering_is_one_alert_for_the_flat_shown_on_a_flat_device(conn: psycopg.Connection) -> None:
    engine = Engine(RULES, Clock(T0), notify=False)
    night = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    records = []
    for k in range(12):  # moving between hall and kitchen every few minutes from 02:00
        room = "hall" if k % 2 == 0 else "kitchen"
        records.append(uplink(f"care-{room}", night + timedelta(minutes=3 * k), motion=True))
    run(conn, engine, records, night + timedelta(hours=2))
    found = alerts(conn)
    assert [a.category for a in found] == ["night_activity"]
    assert found[0].subject == "flat:flat-7" and found[0].device_id in {"care-hall", "care-kitchen"}
    assert found[0].kind == "care"
    # quiet again: the clock resolves it once a window has passed without activity
    assert found[0].state == "resolved" and found[0].resolved_at is not None
    assert found[0].resolved_at <= night + timedelta(minutes=33 + 30)
