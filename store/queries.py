"""Read queries returning domain records (store/records.py) through psycopg's `class_row`.

Every query names a device (or a key) and a time range, so it is an index range scan on the
hypertables; nothing here counts or scans a whole hypertable.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from store.records import READING_COLUMNS, DeadLetterRow, Device, Event, Reading, Uplink

_DEVICE = """
SELECT id, device_id, application_id, source, kind, brand_id, model_id, name, latitude, longitude,
       sensor_height_mm, outlet_invert_mm, care_room, care_group, attributes, first_seen, last_seen,
       count(*) OVER (PARTITION BY device_id) > 1 AS shared_name
FROM devices"""
_READINGS = sql.SQL("""
SELECT r.device_ref, d.device_id, d.application_id, r.time, {cols}
FROM readings r JOIN devices d ON d.id = r.device_ref
WHERE r.device_ref = %s AND r.time >= %s AND r.time < %s ORDER BY r.time""").format(
    cols=sql.SQL(", ").join(sql.Identifier("r", c) for c in READING_COLUMNS)
)
_EVENTS = """
SELECT e.device_ref, d.device_id, d.application_id, e.time, e.kind, e.event_key, e.attrs, e.uplink_key
FROM events e JOIN devices d ON d.id = e.device_ref
WHERE e.device_ref = %s AND e.time >= %s AND e.time < %s ORDER BY e.time, e.kind, e.event_key"""
_UPLINKS = """
SELECT time, uplink_key, application_id, device_id, source, simulated, f_port, f_cnt, frm_payload, decoder,
       rssi_dbm, snr_db, gateway_count, received_at
FROM uplinks WHERE device_id = %s AND application_id = %s AND time >= %s AND time < %s ORDER BY time"""
_DEAD = """
SELECT id, time AS first_time, last_time, repeats, stage, reason, field, error_class, topic, device_id, raw
FROM dead_letters WHERE (%(stage)s::text IS NULL OR stage = %(stage)s)
ORDER BY last_time DESC, id DESC LIMIT %(limit)s"""


def devices(conn: psycopg.Connection) -> list[Device]:
    """Every registered device, by name then application; `shared_name` flags a name in two applications."""
    with conn.cursor(row_factory=class_row(Device)) as cur:
        return cur.execute(_DEVICE + " ORDER BY device_id, application_id").fetchall()


def devices_named(conn: psycopg.Connection, device_id: str) -> list[Device]:
    """The devices with this user-facing name: one, or several told apart by application_id."""
    with conn.cursor(row_factory=class_row(Device)) as cur:
        rows = cur.execute(
            f"SELECT * FROM ({_DEVICE}) d WHERE device_id = %s ORDER BY application_id", (device_id,)
        ).fetchall()
    return rows


def readings(conn: psycopg.Connection, device_ref: int, start: datetime, end: datetime) -> list[Reading]:
    """One device's readings in [start, end), oldest first."""
    with conn.cursor(row_factory=class_row(Reading)) as cur:
        return cur.execute(_READINGS, (device_ref, start, end)).fetchall()


def events(conn: psycopg.Connection, device_ref: int, start: datetime, end: datetime) -> list[Event]:
    """One device's events in [start, end), oldest first."""
    with conn.cursor(row_factory=class_row(Event)) as cur:
        return cur.execute(_EVENTS, (device_ref, start, end)).fetchall()


def uplinks(conn: psycopg.Connection, device: Device, start: datetime, end: datetime) -> list[Uplink]:
    """One device's uplinks as received in [start, end), oldest first."""
    with conn.cursor(row_factory=class_row(Uplink)) as cur:
        return cur.execute(_UPLINKS, (device.device_id, device.application_id, start, end)).fetchall()


def dead_letters(conn: psycopg.Connection, stage: str | None = None, limit: int = 100) -> list[DeadLetterRow]:
    """The most recently seen dead letters, optionally of one stage."""
    with conn.cursor(row_factory=class_row(DeadLetterRow)) as cur:
        return cur.execute(_DEAD, {"stage": stage, "limit": limit}).fetchall()
