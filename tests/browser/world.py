"""The small council the browser tests look at, seeded as the owner through the real code paths: the
registry import for devices and geometry, the ingest writer for uplinks, readings, events, gateways
and dead letters, and the real alert engine (the shipped default rules, on the wall clock) for the
alerts, so the pages show what production would show.

Times are relative to the moment of seeding (the pages compare with the wall clock). Every care
identifier carries the marker `zq7`, so a test can say "no care data here" by looking for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import psycopg

from alerts.engine import Engine
from alerts.rules import DEFAULT_RULES_FILE, load_rules
from store import alerts as alerts_db
from store import registry
from store.records import DeadLetter, DeviceSeen, EventRow, GatewaySeen, ReadingRow, UplinkRecord
from store.writer import IngestWriter
from tests.integration.store.records_factory import record, values

APP = "council"
SENSOR_MM = 1000.0  # every gully: sensor face 1000 mm above the pot floor ...
INVERT_MM = 200.0  # ... outlet invert 200 mm above it: fill % = water above the invert / 800 mm

CARE_MARKER = "zq7"  # in every care device id and the flat's name, and nowhere else
FLAT = f"flat-{CARE_MARKER}"
CARE_BEDROOM = f"care-{CARE_MARKER}-bedroom"
CARE_BATHROOM = f"care-{CARE_MARKER}-bathroom"

#: device_id -> (name, latitude, longitude)
GULLIES = {
    "gully-high-st": ("High Street", 51.4545, -2.5879),  # quiet; floods during the live overview test
    "gully-mill-lane": ("Mill Lane", 51.4551, -2.5902),  # flooding when the world is seeded
    "gully-church-rd": ("Church Road", 51.4538, -2.5861),  # dry, its battery running out
    "gully-station-rd": ("Station Road", 51.4560, -2.5850),  # silent for three hours: offline
}
QUIET, FLOODING, LOW_BATTERY, OFFLINE = GULLIES
TOWN_GATEWAY = "gw-town-hall"
NORTH_GATEWAY = "gw-north-depot"
DEAD_TOPIC = "v3/council@ttn/devices/mystery-sensor/up"
DEAD_REASON = "not JSON: expecting value at line 1 column 1"

_HEADER = "device_id,application_id,kind,brand_id,model_id,name,latitude,longitude,sensor_height_mm,outlet_invert_mm,care_room,care_group\n"  # noqa: E501


@dataclass(frozen=True, slots=True)
class World:
    """What was seeded, for the tests to look for."""

    seeded_at: datetime
    gullies: tuple[str, ...]
    care_devices: tuple[str, ...]
    flat: str
    gateways: tuple[str, ...]
    dead_topic: str


def distance_for(fill_pct: float) -> float:
    """The distance reading that gives `fill_pct` for the world's gully geometry."""
    return SENSOR_MM - (INVERT_MM + fill_pct / 100 * (SENSOR_MM - INVERT_MM))


def _uplink(
    device: str,
    t: datetime,
    n: int,
    gateway: str,
    *,
    model: str,
    measurements: Mapping[str, object] | None = None,
    alarm: dict[str, object] | None = None,
    rssi: float = -95.0,
) -> UplinkRecord:
    key = f"tts:{APP}/{device}:sess:{n}:{t.isoformat()}"
    base = record(device, n, app=APP, time=t, key=key, gateway=gateway)
    events = [EventRow(t, "alarm", f"a{alarm['alarm_id']}", json.dumps(alarm), key)] if alarm else []
    return replace(
        base,
        uplink=base.uplink._replace(
            rx_metadata=json.dumps([{"gateway_ids": {"gateway_id": gateway}, "rssi": rssi, "snr": 6.5}]),
            rssi_dbm=rssi,
            decoder=f"lorawatch:{model}",
        ),
        device=DeviceSeen(device, "tts", t, APP, None, None, "260B0001", model),
        readings=[ReadingRow(t, values(**measurements))] if measurements else [],
        events=events,
        gateways=[GatewaySeen(f"{gateway}:", gateway, None, False, rssi, 6.5, 51.455, -2.588)],
        topic=f"v3/{APP}@ttn/devices/{device}/up",
    )


def gully_uplinks(
    device: str, times: Sequence[datetime], fills: Sequence[float], *, battery_v: float = 3.6, first_n: int = 1
) -> list[UplinkRecord]:
    return [
        _uplink(
            device,
            t,
            first_n + i,
            TOWN_GATEWAY,
            model="dragino/ldds75",
            measurements={"distance_mm": distance_for(fill), "battery_v": battery_v},
        )
        for i, (t, fill) in enumerate(zip(times, fills, strict=True))
    ]


def engine() -> Engine:
    """The real engine with the shipped rules on the wall clock, telling nobody (no channels set)."""
    return Engine(load_rules(DEFAULT_RULES_FILE), lambda: datetime.now(UTC), env={})


def run_engine(conn: psycopg.Connection, *, tick: bool = False) -> None:
    """Evaluate every change in the feed (and, with `tick`, the clock: offline and repeats)."""
    e = engine()
    while e.process(conn, limit=500):
        pass
    if tick:
        e.tick(conn)
    conn.commit()


def write(conn: psycopg.Connection, records: Sequence[UplinkRecord], dead: Sequence[DeadLetter] = ()) -> None:
    IngestWriter(conn).write(records, dead)
    conn.commit()


def _dry(base: float, n: int) -> list[float]:
    """Dry-weather fill with the few-mm wobble of a real echo (a dead-flat series is a stuck sensor)."""
    return [base + ((i * 7) % 5 - 2) * 0.4 for i in range(n)]


def _every(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    out, t = [], start
    while t <= end:
        out.append(t)
        t += step
    return out


#: Earlier falls in the flat, each acknowledged by a carer after this many seconds and then resolved:
#: two within the careline standard's 60 s and one late, so the inbox's panel has something to say.
PAST_ACK_WAITS_S = (25.0, 48.0, 95.0)


def _ahead(seconds: float) -> Callable[[], datetime]:
    """A clock `seconds` ahead of the wall clock: the carer who answers a call that long after it came."""
    return lambda: datetime.now(UTC) + timedelta(seconds=seconds)


def _past_falls(conn: psycopg.Connection, now: datetime) -> None:
    """The falls of PAST_ACK_WAITS_S, through the engine: opened by it, acknowledged and resolved by
    its people actions (as the API calls them) on a clock that far ahead of the wall clock."""
    for i, wait in enumerate(PAST_ACK_WAITS_S):
        t = now - timedelta(minutes=30 - 5 * i)
        alarm = {"alarm_id": 101 + i, "alarm_type": "fall", "alarm_status": "alarm_triggered"}
        write(conn, [_uplink(CARE_BEDROOM, t, 900 + i, NORTH_GATEWAY, model="milesight-iot/vs373", alarm=alarm)])
        run_engine(conn)
        (fall,) = [a for a in alerts_db.list_alerts(conn) if a.category == "fall"]
        late = Engine(load_rules(DEFAULT_RULES_FILE), _ahead(wait))
        late.acknowledge(conn, fall.id, "care", "on my way")
        late.resolve(conn, fall.id, "care", "resident helped up, no injury")
        conn.commit()


def seed(db_url: str) -> World:
    """Register, ingest and evaluate the world; returns what is in it."""
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [
        f"{d},{APP},gully,dragino,ldds75,{name},{lat},{lon},{SENSOR_MM:.0f},{INVERT_MM:.0f},,"
        for d, (name, lat, lon) in GULLIES.items()
    ]
    rows += [
        f"{CARE_BEDROOM},{APP},care,milesight-iot,vs373,Radar {CARE_MARKER} 1,,,,,bedroom,{FLAT}",
        f"{CARE_BATHROOM},{APP},care,milesight-iot,vs373,Radar {CARE_MARKER} 2,,,,,bathroom,{FLAT}",
    ]
    with psycopg.connect(db_url) as conn:
        result = registry.import_devices(conn, _HEADER + "\n".join(rows) + "\n")
        assert result.applied, result.errors
        _past_falls(conn, now)
        day = _every(now - timedelta(hours=24), now - timedelta(minutes=10), timedelta(minutes=15))
        records = gully_uplinks(QUIET, day, _dry(5.0, len(day)))
        records += gully_uplinks(LOW_BATTERY, day, _dry(8.0, len(day)), battery_v=3.0)
        older = [t for t in day if t < now - timedelta(hours=3)]
        records += gully_uplinks(OFFLINE, older, _dry(4.0, len(older)))
        dry = [t for t in day if t < now - timedelta(hours=1)]
        storm = _every(now - timedelta(minutes=55), now - timedelta(minutes=1), timedelta(minutes=3))
        rising = [min(5.0 + 5.0 * i, 80.0) for i in range(len(storm))]
        records += gully_uplinks(FLOODING, dry + storm, _dry(5.0, len(dry)) + rising)
        hours = _every(now - timedelta(days=3), now - timedelta(minutes=5), timedelta(hours=1))
        for device, room_busy in ((CARE_BEDROOM, range(21, 24)), (CARE_BATHROOM, range(7, 9))):
            for i, t in enumerate(hours):
                busy = t.hour in room_busy or t.hour in (10, 14, 18)
                m = {"occupied": busy, "motion_count": 6 if busy else 0, "battery_pct": 90.0}
                records.append(_uplink(device, t, i + 1, NORTH_GATEWAY, model="milesight-iot/vs373", measurements=m))
        fall = {"alarm_id": 7, "alarm_type": "fall", "alarm_status": "alarm_triggered"}
        t_fall = now - timedelta(seconds=40)
        records.append(
            _uplink(CARE_BEDROOM, t_fall, 1000, NORTH_GATEWAY, model="milesight-iot/vs373", alarm=fall, rssi=-101.0)
        )
        records.sort(key=lambda r: r.uplink.time)
        dead = [DeadLetter(now - timedelta(minutes=20), "json", DEAD_REASON, "JSONDecodeError", DEAD_TOPIC, None,
                           b"\x00\x01 not json at all")]  # fmt: skip
        for start in range(0, len(records), 500):
            write(conn, records[start : start + 500], dead if start == 0 else ())
        run_engine(conn, tick=True)
    return World(
        seeded_at=now,
        gullies=tuple(GULLIES),
        care_devices=(CARE_BEDROOM, CARE_BATHROOM),
        flat=FLAT,
        gateways=(TOWN_GATEWAY, NORTH_GATEWAY),
        dead_topic=DEAD_TOPIC,
    )


def flood(db_url: str, device: str = QUIET) -> None:
    """A storm arriving at `device` now: readings in the last few minutes rising to 80 % fill (at a
    pace water can rise), written by the ingest writer and evaluated by the engine."""
    now = datetime.now(UTC).replace(microsecond=0)
    times = [now - timedelta(seconds=30 * k) for k in range(8, -1, -1)]
    fills = [15.0, 25.0, 35.0, 45.0, 55.0, 62.0, 68.0, 74.0, 80.0]
    with psycopg.connect(db_url) as conn:
        write(conn, gully_uplinks(device, times, fills, first_n=10_000))
        run_engine(conn)


def new_fall(db_url: str, alarm_id: int = 8) -> None:
    """A second fall in the flat, now."""
    now = datetime.now(UTC).replace(microsecond=0)
    fall = {"alarm_id": alarm_id, "alarm_type": "fall", "alarm_status": "alarm_triggered"}
    with psycopg.connect(db_url) as conn:
        write(conn, [_uplink(CARE_BATHROOM, now, 20_000 + alarm_id, NORTH_GATEWAY, model="milesight-iot/vs373",
                             alarm=fall)])  # fmt: skip
        run_engine(conn)
