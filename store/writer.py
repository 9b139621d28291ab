"""Batch writes for ingest: COPY into per-connection staging tables, then idempotent inserts.

One transaction per batch. Uplinks land with `ON CONFLICT DO NOTHING` on their natural key, so a
redelivered or backfilled uplink is counted as a duplicate and nothing else of it is written. When a
batch fails on its data (not on the connection), it is rolled back and retried record by record, and
only the records that still fail are dead-lettered (stage `store`): one bad row never sinks a batch.
Connection failures propagate so the caller can wait and retry the same batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import psycopg

#: The measurement columns of `readings`, in table order (decoders' VOCABULARY names; a test keeps
#: this list, the migration and the vocabulary in step).
READING_COLUMNS: tuple[str, ...] = (
    "distance_mm", "distance2_mm", "distance_valid", "valid_samples", "battery_v", "battery_pct",
    "temperature_c", "humidity_pct", "illuminance_lux", "illuminance", "occupied", "occupancy_state",
    "motion", "motion_count", "tilted", "interrupt", "respiratory_rate", "radar_rssi", "fall_detected",
    "lying_down", "in_bed",
)  # fmt: skip
READING_INDEX = {name: i for i, name in enumerate(READING_COLUMNS)}

UPLINK_COLUMNS = (
    "time", "uplink_key", "device_id", "source", "simulated", "f_port", "f_cnt", "frm_payload",
    "session_key_id", "dev_addr", "frequency_hz", "spreading_factor", "bandwidth_hz", "rssi_dbm", "snr_db",
    "gateway_count", "decoded", "decoder", "rx_metadata",
)  # fmt: skip
EVENT_COLUMNS = ("time", "device_id", "kind", "event_key", "attrs", "uplink_key")
DEAD_LETTER_COLUMNS = ("time", "stage", "reason", "error_class", "topic", "device_id", "raw")


@dataclass(slots=True)
class DeviceSeen:
    """What one uplink says about its device, for auto-registration and last-seen."""

    device_id: str
    source: str
    time: datetime
    application_id: str | None = None
    dev_eui: str | None = None
    join_eui: str | None = None
    dev_addr: str | None = None
    model: str | None = None


class GatewaySeen(NamedTuple):
    """One gateway (or Packet Broker forwarder) that heard an uplink, with the signal it heard.

    A NamedTuple rather than a frozen dataclass: one is built per gateway per uplink on the ingest hot
    path, and a frozen dataclass's `__init__` costs several times a tuple's."""

    key: str
    gateway_id: str
    eui: str | None
    packet_broker: bool
    rssi: float | None
    snr: float | None
    latitude: float | None
    longitude: float | None


@dataclass(slots=True)
class DeadLetter:
    time: datetime
    stage: str
    reason: str
    error_class: str | None
    topic: str | None
    device_id: str | None
    raw: bytes


@dataclass(slots=True)
class UplinkRecord:
    """Everything one uplink writes. `uplink` follows UPLINK_COLUMNS; each reading is
    `(time, device_id, values)` with values indexed like READING_COLUMNS; each event follows
    EVENT_COLUMNS. `topic` and `raw` let a record that the database refuses be dead-lettered whole."""

    uplink: tuple[Any, ...]
    device: DeviceSeen
    readings: list[tuple[datetime, str, list[Any]]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    gateways: list[GatewaySeen] = field(default_factory=list)
    topic: str = ""
    raw: bytes = b""
    dead_letters: list[DeadLetter] = field(default_factory=list)  # values refused inside a stored uplink


@dataclass(slots=True)
class WriteResult:
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    store_rejects: list[DeadLetter] = field(default_factory=list)
    value_rejects: list[DeadLetter] = field(default_factory=list)  # stage `range`, their uplinks stored


_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_uplinks (LIKE uplinks INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_readings (LIKE readings) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_events (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_devices (
    device_id text, source text, application_id text, dev_eui text, join_eui text, dev_addr text,
    brand_id text, model_id text, first_seen timestamptz, last_seen timestamptz) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_gateways (LIKE gateways) ON COMMIT DELETE ROWS;
-- JSON arrives as text and is cast on insert: binary COPY has no way to send our JSON text as jsonb.
ALTER TABLE stage_uplinks ALTER COLUMN decoded TYPE text, ALTER COLUMN rx_metadata TYPE text;
ALTER TABLE stage_events ALTER COLUMN attrs TYPE text;
"""
_JSON = {"decoded", "rx_metadata", "attrs"}


def _select(columns: Sequence[str]) -> str:
    return ", ".join(f"{c}::jsonb" if c in _JSON else c for c in columns)


_COLS_UP = ", ".join(UPLINK_COLUMNS)
_COLS_RD = ", ".join(("time", "device_id", *READING_COLUMNS))
_COLS_EV = ", ".join(EVENT_COLUMNS)
_INSERT_UPLINKS = (
    f"INSERT INTO uplinks ({_COLS_UP}) SELECT {_select(UPLINK_COLUMNS)} FROM stage_uplinks "
    "ON CONFLICT DO NOTHING RETURNING uplink_key, time"
)
_INSERT_READINGS = f"INSERT INTO readings ({_COLS_RD}) SELECT {_COLS_RD} FROM stage_readings ON CONFLICT DO NOTHING"
_INSERT_EVENTS = (
    f"INSERT INTO events ({_COLS_EV}) SELECT {_select(EVENT_COLUMNS)} FROM stage_events ON CONFLICT DO NOTHING"
)
_DEVICE_COLUMNS = ("device_id", "source", "application_id", "dev_eui", "join_eui", "dev_addr", "brand_id",
                   "model_id", "first_seen", "last_seen")  # fmt: skip
_GATEWAY_COLUMNS = ("gateway_key", "gateway_id", "eui", "packet_broker", "latitude", "longitude", "first_seen",
                    "last_seen", "uplinks")  # fmt: skip
_DEVICES, _GATEWAYS = ", ".join(_DEVICE_COLUMNS), ", ".join(_GATEWAY_COLUMNS)
_UPSERT_DEVICE = f"""
INSERT INTO devices ({_DEVICES}) SELECT {_DEVICES} FROM stage_devices ORDER BY device_id
ON CONFLICT (device_id) DO UPDATE SET
    last_seen = greatest(devices.last_seen, excluded.last_seen),
    first_seen = least(devices.first_seen, excluded.first_seen),
    dev_addr = coalesce(excluded.dev_addr, devices.dev_addr),
    dev_eui = coalesce(devices.dev_eui, excluded.dev_eui),
    join_eui = coalesce(devices.join_eui, excluded.join_eui),
    application_id = coalesce(devices.application_id, excluded.application_id),
    brand_id = coalesce(devices.brand_id, excluded.brand_id),
    model_id = coalesce(devices.model_id, excluded.model_id)
"""
_UPSERT_GATEWAY = f"""
INSERT INTO gateways ({_GATEWAYS}) SELECT {_GATEWAYS} FROM stage_gateways ORDER BY gateway_key
ON CONFLICT (gateway_key) DO UPDATE SET
    last_seen = greatest(gateways.last_seen, excluded.last_seen),
    first_seen = least(gateways.first_seen, excluded.first_seen),
    latitude = coalesce(excluded.latitude, gateways.latitude),
    longitude = coalesce(excluded.longitude, gateways.longitude),
    uplinks = gateways.uplinks + excluded.uplinks
"""


class IngestWriter:
    """Writes batches on one connection (not thread-safe: one writer per ingest loop)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        conn.execute(_STAGING)
        rows = conn.execute(
            "SELECT c.relname, a.attname, a.atttypid FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relname IN ('stage_uplinks', 'stage_readings', 'stage_events', 'stage_devices', "
            "'stage_gateways', 'dead_letters') AND c.relnamespace IN (pg_my_temp_schema(), 'public'::regnamespace) "
            "AND a.attnum > 0 AND NOT a.attisdropped"
        ).fetchall()
        conn.commit()
        self._oids: dict[tuple[str, str], int] = {(table, column): oid for table, column, oid in rows}

    def _copy(
        self, cur: psycopg.Cursor[Any], table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        """Binary COPY: no text formatting here and no timestamp parsing on the server, per value."""
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([self._oids[table, c] for c in columns])
            for row in rows:
                copy.write_row(row)

    def write(self, records: Sequence[UplinkRecord], dead: Sequence[DeadLetter] = ()) -> WriteResult:
        """Write one batch in one transaction; see the module docstring for the failure rules."""
        try:
            with self.conn.transaction():
                result = self._write(records)
                self._dead_letters(dead)
                result.dead_lettered = len(dead)
            return result
        except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError, ValueError, TypeError):
            if len(records) <= 1 and not dead:
                raise
        return self._write_one_by_one(records, dead)

    def _write_one_by_one(self, records: Sequence[UplinkRecord], dead: Sequence[DeadLetter]) -> WriteResult:
        total = WriteResult()
        rejects: list[DeadLetter] = []
        for record in records:
            try:
                with self.conn.transaction():
                    one = self._write([record])
                total.stored += one.stored
                total.duplicates += one.duplicates
                total.value_rejects += one.value_rejects
            except (
                psycopg.DataError,
                psycopg.IntegrityError,
                psycopg.ProgrammingError,
                ValueError,
                TypeError,
            ) as exc:
                rejects.append(
                    DeadLetter(
                        record.device.time,
                        "store",
                        f"database refused the uplink: {exc}",
                        type(exc).__name__,
                        record.topic,
                        record.device.device_id,
                        record.raw,
                    )
                )
        with self.conn.transaction():
            self._dead_letters([*dead, *rejects])
        total.dead_lettered = len(dead) + len(rejects)
        total.store_rejects = rejects
        return total

    def _write(self, records: Sequence[UplinkRecord]) -> WriteResult:
        if not records:
            return WriteResult()
        cur = self.conn.cursor()
        unique: dict[tuple[str, datetime], UplinkRecord] = {}
        for r in records:  # a redelivery can share a batch with its original: first one wins
            unique.setdefault((r.uplink[1], r.uplink[0]), r)
        self._copy(cur, "stage_uplinks", UPLINK_COLUMNS, (r.uplink for r in unique.values()))
        new = {(key, t) for key, t in cur.execute(_INSERT_UPLINKS).fetchall()}
        fresh = [r for k, r in unique.items() if k in new]
        if any(r.readings for r in fresh):
            rows = ((time, device_id, *values) for r in fresh for time, device_id, values in r.readings)
            self._copy(cur, "stage_readings", ("time", "device_id", *READING_COLUMNS), rows)
            cur.execute(_INSERT_READINGS)
        if any(r.events for r in fresh):
            self._copy(cur, "stage_events", EVENT_COLUMNS, (e for r in fresh for e in r.events))
            cur.execute(_INSERT_EVENTS)
        self._devices(fresh)
        self._gateways(fresh)
        partial = [d for r in fresh for d in r.dead_letters]
        self._dead_letters(partial)
        duplicates = len(records) - len(fresh)
        if duplicates:
            cur.execute("UPDATE counters SET value = value + %s WHERE name = 'duplicates'", (duplicates,))
        return WriteResult(stored=len(fresh), duplicates=duplicates, value_rejects=partial)

    def _devices(self, records: Sequence[UplinkRecord]) -> None:
        merged: dict[str, tuple[DeviceSeen, datetime, datetime]] = {}
        for r in records:
            d = r.device
            prev = merged.get(d.device_id)
            merged[d.device_id] = (d, min(prev[1], d.time), max(prev[2], d.time)) if prev else (d, d.time, d.time)
        rows = []
        for d, first, last in merged.values():
            brand, _, model = (d.model or "").partition("/")
            rows.append(
                (
                    d.device_id,
                    d.source,
                    d.application_id,
                    d.dev_eui,
                    d.join_eui,
                    d.dev_addr,
                    brand or None,
                    model or None,
                    first,
                    last,
                )
            )
        self._upsert("stage_devices", _DEVICE_COLUMNS, _UPSERT_DEVICE, rows)

    def _gateways(self, records: Sequence[UplinkRecord]) -> None:
        merged: dict[str, list[Any]] = {}
        for r in records:
            t = r.device.time
            for g in r.gateways:
                row = merged.get(g.key)
                if row is None:
                    merged[g.key] = [
                        g.key,
                        g.gateway_id,
                        g.eui,
                        g.packet_broker,
                        g.latitude,
                        g.longitude,
                        t,
                        t,
                        1,
                    ]
                else:
                    row[6], row[7], row[8] = min(row[6], t), max(row[7], t), row[8] + 1
        self._upsert("stage_gateways", _GATEWAY_COLUMNS, _UPSERT_GATEWAY, list(merged.values()))

    def _upsert(self, stage: str, columns: Sequence[str], sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """COPY rows (unique by key) into a staging table, then one set-based upsert."""
        if not rows:
            return
        cur = self.conn.cursor()
        self._copy(cur, stage, columns, rows)
        cur.execute(sql)

    def _dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        if not dead:
            return
        rows = ((d.time, d.stage, d.reason, d.error_class, d.topic, d.device_id, d.raw) for d in dead)
        self._copy(self.conn.cursor(), "dead_letters", DEAD_LETTER_COLUMNS, rows)


def device_models(conn: psycopg.Connection) -> dict[str, str]:
    """device_id -> `brand/model` for every device whose model is known (the decoder choice)."""
    sql = "SELECT device_id, brand_id || '/' || model_id FROM devices WHERE brand_id <> '' AND model_id <> ''"
    return dict(conn.execute(sql).fetchall())


def to_json(value: Any) -> str | None:
    """jsonb text for COPY (None stays NULL). orjson: the hot path serialises two documents per uplink."""
    return None if value is None else orjson.dumps(value, default=str).decode()
