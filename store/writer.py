"""Batch writes for ingest: COPY into per-connection staging tables, then idempotent set-based inserts.

One transaction per batch, and its change-feed entry in the same transaction. The rules:

- **Duplicates**: an uplink's natural key goes into the `uplink_keys` ledger first; only uplinks whose
  key is new are written (with their readings, events, device and gateway updates). A repeat is
  counted and nothing else of it is written, whatever its timestamp.
- **A bad row never sinks a batch, and never stalls it**: when the database refuses part of a batch,
  the batch is bisected inside its transaction (savepoints) until the refused records are alone;
  those are dead-lettered (stage `store`, the column named) and the rest is written. Ten bad rows in
  20,000 cost about 10 x log2(20,000) small statements, not 20,000 transactions.
- **An outage is not a bad row**: only errors that say the database or the connection is unavailable
  (SQLSTATE classes 08, 40, 53, 55, 57, 58, or a lost connection) raise `Outage`, and the caller retries
  the same batch; everything else the database says is about the data.
- **Nothing wraps silently**: binary COPY sends an integer in its column's width, so 65,543 in a
  smallint would arrive as 7; every integer and `real` value is checked against its column first.
- **Watermarks never move into the future**: `devices.last_seen` and gateways' `last_seen` are capped
  at the transaction's time, and simulated uplinks (TTS "simulate uplink") touch no device or gateway.
- **Counters and the change feed** are updated last, just before commit: the `feed_head` row lock
  orders change ids by commit (see store/feed.py), and every statement takes its row locks in key
  order, so two workers wait for each other briefly but never deadlock.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.adapt import Dumper

from store.records import (
    READING_COLUMNS,
    UPLINK_COLUMNS,
    DeadLetter,
    UplinkRecord,
    UplinkRow,
    WriteResult,
)

log = logging.getLogger(__name__)

#: SQLSTATE classes that mean "the database is unavailable right now", not "this row is bad":
#: connection exception, transaction rollback (deadlock, serialization), insufficient resources,
#: object not in prerequisite state (lock not available), operator intervention (shutdown), system error.
_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "55", "57", "58"})

#: The NOTIFY channel that wakes change-feed consumers (the payload is the change id).
CHANNEL = "lorawatch_changes"


class Outage(Exception):
    """The database or the connection is unavailable: reconnect and retry the same batch."""


def is_outage(exc: BaseException) -> bool:
    """True when `exc` says the database is unavailable (retry), False when it is about the data."""
    if isinstance(exc, Outage):
        return True
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:  # raised by the client: a lost connection, or a value it could not send
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return state[:2] in _TRANSIENT_CLASSES


def _is_refusal(exc: BaseException) -> bool:
    """The database (or the client's dumper) refused a value: isolate the record that carries it."""
    return isinstance(exc, psycopg.Error | ValueError | TypeError | OverflowError) and not is_outage(exc)


# --- column bounds: what binary COPY would otherwise wrap ---------------------------------------------

_SMALLINT = (-(2**15), 2**15 - 1)
_INTEGER = (-(2**31), 2**31 - 1)
_BIGINT = (-(2**63), 2**63 - 1)
_REAL = 3.4028234e38

_U = {name: i for i, name in enumerate(UPLINK_COLUMNS)}
_UPLINK_INTS = tuple(
    (_U[name], name, bounds)
    for name, bounds in (
        ("f_port", _INTEGER),
        ("f_cnt", _BIGINT),
        ("frequency_hz", _BIGINT),
        ("spreading_factor", _SMALLINT),
        ("bandwidth_hz", _INTEGER),
        ("gateway_count", _SMALLINT),
    )
)
_UPLINK_REALS = ((_U["rssi_dbm"], "rssi_dbm"), (_U["snr_db"], "snr_db"))
_READING_INTS = tuple(
    (READING_COLUMNS.index(name), name, bounds)
    for name, bounds in (
        ("valid_samples", _INTEGER),
        ("illuminance", _SMALLINT),
        ("occupancy_state", _SMALLINT),
        ("motion_count", _INTEGER),
    )
)
_READING_REALS = tuple(
    (READING_COLUMNS.index(name), name)
    for name in (
        "battery_v",
        "battery_pct",
        "temperature_c",
        "humidity_pct",
        "illuminance_lux",
        "respiratory_rate",
        "radar_rssi",
    )
)


class ColumnBoundsError(ValueError):
    """A value does not fit its column; `column` names it."""

    def __init__(self, column: str, value: Any) -> None:
        super().__init__(f"{column} = {value!r} does not fit its column")
        self.column = column


def check_bounds(record: UplinkRecord) -> None:
    """Raise ColumnBoundsError for the first value of `record` that its column cannot hold exactly."""
    up: tuple[Any, ...] = record.uplink
    for i, name, (low, high) in _UPLINK_INTS:
        v = up[i]
        if v is not None and not low <= v <= high:
            raise ColumnBoundsError(name, v)
    for i, name in _UPLINK_REALS:
        v = up[i]
        if v is not None and not -_REAL <= v <= _REAL:  # NaN fails too
            raise ColumnBoundsError(name, v)
    for reading in record.readings:
        values = reading.values
        for i, name, (low, high) in _READING_INTS:
            v = values[i]
            if v is not None and not low <= v <= high:
                raise ColumnBoundsError(name, v)
        for i, name in _READING_REALS:
            v = values[i]
            if v is not None and not -_REAL <= v <= _REAL:
                raise ColumnBoundsError(name, v)


# --- SQL, built once from identifiers --------------------------------------------------------------


def _ids(columns: Iterable[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c) for c in columns)


def _select(columns: Iterable[str], json_columns: frozenset[str] = frozenset()) -> sql.Composed:
    """The staged columns, JSON ones cast from text (binary COPY cannot send our JSON text as jsonb)."""
    return sql.SQL(", ").join(
        sql.SQL("{}::jsonb").format(sql.Identifier(c)) if c in json_columns else sql.Identifier(c) for c in columns
    )


_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_readings (LIKE readings) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_events (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_devices (
    device_id text, application_id text, source text, dev_eui text, join_eui text, dev_addr text,
    brand_id text, model_id text, first_seen timestamptz, last_seen timestamptz) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_gateways (LIKE gateways) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_dead (
    key bytea, time timestamptz, stage text, reason text, field text, error_class text, topic text,
    device_id text, raw bytea, repeats bigint) ON COMMIT DELETE ROWS;
-- What this transaction inserted, for its change-feed entry.
CREATE TEMP TABLE IF NOT EXISTS fresh_readings (device_ref integer, time timestamptz) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS fresh_events (
    device_ref integer, time timestamptz, kind text, event_key text) ON COMMIT DELETE ROWS;
ALTER TABLE stage_events ALTER COLUMN attrs TYPE text;
"""
_STAGE_TABLES = ("stage_readings", "stage_events", "stage_devices", "stage_gateways")

_READING_ROW = ("device_ref", "time", *READING_COLUMNS)
_EVENT_ROW = ("device_ref", "time", "kind", "event_key", "attrs", "uplink_key")
_DEVICE_ROW = ("device_id", "application_id", "source", "dev_eui", "join_eui", "dev_addr", "brand_id",
               "model_id", "first_seen", "last_seen")  # fmt: skip
_GATEWAY_ROW = ("gateway_key", "gateway_id", "eui", "packet_broker", "latitude", "longitude", "first_seen",
                "last_seen", "uplinks")  # fmt: skip
_DEAD_ROW = ("key", "time", "stage", "reason", "field", "error_class", "topic", "device_id", "raw", "repeats")

#: Which of the batch's keys are new: the ledger decides, and only those uplinks are copied.
_NEW_KEYS = """
INSERT INTO uplink_keys (uplink_key, time) SELECT * FROM unnest(%b::text[], %b::timestamptz[])
ON CONFLICT DO NOTHING RETURNING uplink_key"""
_INSERT_READINGS = sql.SQL("""
WITH ins AS (
    INSERT INTO readings ({cols}) SELECT {cols} FROM stage_readings
    ON CONFLICT DO NOTHING RETURNING device_ref, time)
INSERT INTO fresh_readings SELECT device_ref, time FROM ins""").format(cols=_ids(_READING_ROW))
_KNOWN_DEVICES = """
SELECT d.id, d.application_id, d.device_id FROM devices d
JOIN unnest(%s::text[], %s::text[]) AS n(application_id, device_id) USING (application_id, device_id)"""
_SIM_READINGS = sql.SQL("INSERT INTO simulated_readings ({cols}) VALUES ({values}) ON CONFLICT DO NOTHING").format(
    cols=_ids((*_READING_ROW, "uplink_key")), values=sql.SQL(", ").join(sql.Placeholder() * (len(_READING_ROW) + 1))
)
_SIM_EVENTS = """
INSERT INTO simulated_events (device_ref, time, kind, event_key, attrs, uplink_key)
VALUES (%s, %s, %s, %s, %s::jsonb, %s) ON CONFLICT DO NOTHING"""
_FRESH_READINGS = "INSERT INTO fresh_readings SELECT * FROM unnest(%b::integer[], %b::timestamptz[])"
_INSERT_EVENTS = sql.SQL("""
WITH ins AS (
    INSERT INTO events ({cols}) SELECT {select} FROM stage_events
    ON CONFLICT DO NOTHING RETURNING device_ref, time, kind, event_key)
INSERT INTO fresh_events SELECT device_ref, time, kind, event_key FROM ins""").format(
    cols=_ids(_EVENT_ROW), select=_select(_EVENT_ROW, frozenset({"attrs"}))
)
# A registry entry imported without an application adopts the first application that sends its name.
_ADOPT_DEVICES = """
UPDATE devices d SET application_id = s.application_id FROM stage_devices s
WHERE d.application_id = '' AND s.application_id <> '' AND d.device_id = s.device_id
  AND NOT EXISTS (SELECT 1 FROM devices o WHERE o.application_id = s.application_id AND o.device_id = s.device_id)
"""
#: Devices this connection has written before: their row exists, only what an uplink moves changes.
#: Cheaper than the upsert (no staging, no conflict arbiter), and HOT (fillfactor 50, nothing indexed changes).
_TOUCH_DEVICES = """
UPDATE devices d SET last_seen = greatest(d.last_seen, least(s.last_seen, now())),
                     first_seen = least(d.first_seen, s.first_seen),
                     dev_addr = coalesce(s.dev_addr, d.dev_addr)
FROM (SELECT * FROM unnest(%b::integer[], %b::timestamptz[], %b::timestamptz[], %s::text[])
      AS u(id, first_seen, last_seen, dev_addr) ORDER BY id) s
WHERE d.id = s.id"""
_UPSERT_DEVICES = sql.SQL("""
INSERT INTO devices ({cols})
SELECT device_id, application_id, source, dev_eui, join_eui, dev_addr, brand_id, model_id,
       least(first_seen, now()), least(last_seen, now())
FROM stage_devices ORDER BY application_id, device_id
ON CONFLICT (application_id, device_id) DO UPDATE SET
    last_seen = greatest(devices.last_seen, excluded.last_seen),
    first_seen = least(devices.first_seen, excluded.first_seen),
    dev_addr = coalesce(excluded.dev_addr, devices.dev_addr),
    dev_eui = coalesce(devices.dev_eui, excluded.dev_eui),
    join_eui = coalesce(devices.join_eui, excluded.join_eui),
    brand_id = coalesce(devices.brand_id, excluded.brand_id),
    model_id = coalesce(devices.model_id, excluded.model_id)
RETURNING id, application_id, device_id""").format(cols=_ids(_DEVICE_ROW))
_UPSERT_GATEWAYS = sql.SQL("""
INSERT INTO gateways ({cols})
SELECT gateway_key, gateway_id, eui, packet_broker, latitude, longitude, least(first_seen, now()),
       least(last_seen, now()), uplinks
FROM stage_gateways ORDER BY gateway_key
ON CONFLICT (gateway_key) DO UPDATE SET
    last_seen = greatest(gateways.last_seen, excluded.last_seen),
    first_seen = least(gateways.first_seen, excluded.first_seen),
    latitude = coalesce(excluded.latitude, gateways.latitude),
    longitude = coalesce(excluded.longitude, gateways.longitude),
    uplinks = gateways.uplinks + excluded.uplinks""").format(cols=_ids(_GATEWAY_ROW))
_UPSERT_DEAD = sql.SQL("""
INSERT INTO dead_letters (last_time, {cols}) SELECT time, {cols} FROM stage_dead ORDER BY key
ON CONFLICT (key) DO UPDATE SET
    repeats = dead_letters.repeats + excluded.repeats,
    last_time = greatest(dead_letters.last_time, excluded.last_time)""").format(cols=_ids(_DEAD_ROW))
_CHANGE = """
WITH head AS (UPDATE feed_head SET id = id + 1 RETURNING id), change AS (
INSERT INTO changes (id, uplinks, readings, events, reading_devices, reading_times, event_devices, event_times,
                     event_kinds, event_keys, seen_devices, seen_times, seen_gateways, simulated_uplinks)
SELECT head.id, %s, %s, %s, coalesce(r.d, '{}'), coalesce(r.t, '{}'), coalesce(e.d, '{}'), coalesce(e.t, '{}'),
       coalesce(e.k, '{}'), coalesce(e.ek, '{}'), %b::integer[], %b::timestamptz[], %b::text[], %b::text[]
FROM head,
     LATERAL (SELECT array_agg(device_ref ORDER BY device_ref, time) AS d,
                     array_agg(time ORDER BY device_ref, time) AS t FROM fresh_readings) r,
     LATERAL (SELECT array_agg(device_ref ORDER BY device_ref, time, kind, event_key) AS d,
                     array_agg(time ORDER BY device_ref, time, kind, event_key) AS t,
                     array_agg(kind ORDER BY device_ref, time, kind, event_key) AS k,
                     array_agg(event_key ORDER BY device_ref, time, kind, event_key) AS ek FROM fresh_events) e
RETURNING id)
SELECT id, pg_notify(%s, id::text) FROM change"""
_COUNT = """
INSERT INTO counters (name, value)
SELECT name, value FROM unnest(%s::text[], %s::bigint[]) AS c(name, value) ORDER BY name
ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value"""

_COLUMN_IN_CONTEXT = re.compile(r"column (\w+)")


class _JsonTextDumper(Dumper):
    """JSON text (a str) to jsonb's binary wire format: version 1, then the text."""

    format = psycopg.pq.Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return b"\x01" + str(obj).encode()


class IngestWriter:
    """Writes batches on one connection (not thread-safe: one writer per ingest loop)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        conn.execute(_STAGING)
        rows = conn.execute(
            "SELECT c.relname, a.attname, a.atttypid FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE (c.relname = ANY(%s) AND c.relnamespace = pg_my_temp_schema() "
            "OR c.oid IN ('uplinks'::regclass, 'readings'::regclass)) "
            "AND a.attnum > 0 AND NOT a.attisdropped",
            ([*_STAGE_TABLES, "stage_dead"],),
        ).fetchall()
        conn.commit()
        # Uplinks are copied straight into their hypertable, their JSON (already text, from orjson) in
        # jsonb's binary form: a version byte and the text. Registered by oid only, so it serves COPY
        # after set_types and nothing else on this connection.
        jsonb = conn.adapters.types["jsonb"].oid
        conn.adapters.register_dumper(None, type("JsonTextDumper", (_JsonTextDumper,), {"oid": jsonb}))
        self._oids: dict[tuple[str, str], int] = {(table, column): oid for table, column, oid in rows}
        self._copy_sql: dict[tuple[str, tuple[str, ...]], sql.Composed] = {}
        #: (application_id, device_id) -> devices.id, for the devices this connection has written
        self._device_refs: dict[tuple[str, str], int] = {}

    # --- public --------------------------------------------------------------------------------------

    def write(
        self,
        records: Sequence[UplinkRecord],
        dead: Sequence[DeadLetter] = (),
        skipped: Mapping[str, int] | None = None,
    ) -> WriteResult:
        """Write one batch in one transaction; raises only `Outage` (see the module docstring)."""
        refs: dict[tuple[str, str], int] = {}
        try:
            with self.conn.transaction():
                result = self._batch(records, dead, skipped or {}, refs, isolate=False)
        except Exception as exc:
            self._raise_if_outage(exc)
            if not _is_refusal(exc):
                raise
            log.warning("ingest_batch_refused_isolating", extra={"error": str(exc).strip()[:300]})
            refs.clear()
            try:
                with self.conn.transaction():
                    result = self._batch(records, dead, skipped or {}, refs, isolate=True)
            except Exception as exc2:
                self._raise_if_outage(exc2)
                raise
        self._device_refs.update(refs)
        return result

    def _raise_if_outage(self, exc: BaseException) -> None:
        if is_outage(exc) or self.conn.closed or self.conn.broken:
            raise Outage(str(exc).strip() or type(exc).__name__) from exc

    # --- one batch -----------------------------------------------------------------------------------

    def _batch(
        self,
        records: Sequence[UplinkRecord],
        dead: Sequence[DeadLetter],
        skipped: Mapping[str, int],
        refs: dict[tuple[str, str], int],
        *,
        isolate: bool,
    ) -> WriteResult:
        unique: dict[str, UplinkRecord] = {}
        for r in records:  # a redelivery can share a batch with its original: the first one wins
            unique.setdefault(r.uplink.uplink_key, r)
        candidates = list(unique.values())
        result = WriteResult(duplicates=len(records) - len(candidates))
        if isolate:
            fresh = self._isolate(candidates, refs, result)
        else:
            for r in candidates:
                check_bounds(r)
            fresh = self._insert(candidates, refs, result)
        result.stored = len(fresh)
        result.duplicates += len(candidates) - len(fresh) - len(result.store_rejects)
        result.value_rejects = [d for r in fresh for d in r.dead_letters]
        whole = [*dead, *result.store_rejects]
        result.dead_lettered = len(whole)
        result.skipped = sum(skipped.values())
        self._dead_letters([*whole, *result.value_rejects])
        cur = self.conn.cursor()
        if fresh:
            # Each device's newest uplink through each set of gateways (one entry for most devices):
            # a gateway's last carriage of a device is never dated by another gateway's later uplink.
            # Unordered: the engine orders each device's observations by time.
            seen: dict[tuple[int, str], datetime] = {}
            for r in fresh:
                ref = refs.get((r.device.application_id, r.device.device_id))
                if ref is not None:
                    key = (ref, ",".join(sorted({g.gateway_id for g in r.gateways})))
                    if key not in seen or r.device.time > seen[key]:
                        seen[key] = r.device.time
            # %b: the arrays go in binary, which is several times cheaper to build than their text form.
            row = cur.execute(
                _CHANGE,
                (
                    result.stored,
                    result.readings,
                    result.events,
                    [ref for ref, _ in seen],
                    list(seen.values()),
                    [gateways for _, gateways in seen],
                    result.simulated_keys,
                    CHANNEL,
                ),
            ).fetchone()
            result.change_id = int(row[0]) if row else None
        counts: dict[str, int] = {
            "uplinks": result.stored,
            "readings": result.readings,
            "events": result.events,
            "duplicates": result.duplicates,
            "reading_duplicates": result.reading_duplicates,
        }
        for d in [*whole, *result.value_rejects]:
            counts[f"dead:{d.stage}"] = counts.get(f"dead:{d.stage}", 0) + 1
        for kind, n in skipped.items():
            counts[f"skipped:{kind}"] = counts.get(f"skipped:{kind}", 0) + n
        names = sorted(name for name, n in counts.items() if n)
        if names:
            cur.execute(_COUNT, (names, [counts[n] for n in names]))
        return result

    def _isolate(
        self, records: list[UplinkRecord], refs: dict[tuple[str, str], int], result: WriteResult
    ) -> list[UplinkRecord]:
        """Bisect `records` in savepoints until each refused record is alone; dead-letter those."""
        fresh: list[UplinkRecord] = []
        pending = [records]
        while pending:
            chunk = pending.pop()
            if not chunk:
                continue
            staged = (result.readings, result.events, result.reading_duplicates)
            simulated = len(result.simulated_keys)
            try:
                with self.conn.transaction():
                    self._clear_staging()
                    for r in chunk:
                        check_bounds(r)
                    fresh.extend(self._insert(chunk, refs, result))
            except Exception as exc:
                self._raise_if_outage(exc)
                if not _is_refusal(exc):
                    raise
                result.readings, result.events, result.reading_duplicates = staged
                del result.simulated_keys[simulated:]
                if len(chunk) == 1:
                    result.store_rejects.append(_store_reject(chunk[0], exc))
                else:
                    mid = len(chunk) // 2
                    pending.extend((chunk[mid:], chunk[:mid]))
        return fresh

    def _clear_staging(self) -> None:
        cur = self.conn.cursor()
        for table in _STAGE_TABLES:
            cur.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))

    def _insert(
        self, records: list[UplinkRecord], refs: dict[tuple[str, str], int], result: WriteResult
    ) -> list[UplinkRecord]:
        """Stage and insert `records`; returns those whose key was new (the others are duplicates)."""
        if not records:
            return []
        cur = self.conn.cursor()
        keys = [r.uplink.uplink_key for r in records]
        new = {key for (key,) in cur.execute(_NEW_KEYS, (keys, [r.uplink.time for r in records])).fetchall()}
        fresh = [r for r in records if r.uplink.uplink_key in new]
        if fresh:
            self._copy(cur, "uplinks", UPLINK_COLUMNS, (r.uplink for r in fresh))
        real = [r for r in fresh if not r.uplink.simulated]  # simulated uplinks touch no device state
        simulated = [r for r in fresh if r.uplink.simulated and (r.readings or r.events)]
        if simulated:
            self._simulated(cur, simulated, result)
        if not real:
            return fresh
        self._devices(cur, real, refs)
        readings = [
            (refs[r.device.application_id, r.device.device_id], rd.time, *rd.values) for r in real for rd in r.readings
        ]
        if readings:
            inserted = self._readings(cur, readings)
            result.readings += inserted
            result.reading_duplicates += len(readings) - inserted
        events = [
            (refs[r.device.application_id, r.device.device_id], *e) for r in real for e in r.events
        ]  # EventRow: time, kind, event_key, attrs, uplink_key
        if events:
            self._copy(cur, "stage_events", _EVENT_ROW, events)
            result.events += cur.execute(_INSERT_EVENTS).rowcount
        self._gateways(cur, real)
        return fresh

    def _simulated(self, cur: psycopg.Cursor[Any], records: list[UplinkRecord], result: WriteResult) -> None:
        """Readings and events of simulated uplinks, for registered devices only, in tables of their own:
        the alert rules see them (and mark what they raise as simulated); nothing else does."""
        names = sorted({(r.device.application_id, r.device.device_id) for r in records})
        known = {
            (app, dev): ref
            for ref, app, dev in cur.execute(_KNOWN_DEVICES, ([a for a, _ in names], [d for _, d in names])).fetchall()
        }
        readings, events = [], []
        for r in records:
            ref = known.get((r.device.application_id, r.device.device_id))
            if ref is None:
                continue
            key = r.uplink.uplink_key
            readings += [(ref, rd.time, *rd.values, key) for rd in r.readings]
            events += [(ref, *e[:4], key) for e in r.events]
            result.simulated_keys.append(key)
        if readings:
            cur.executemany(_SIM_READINGS, readings)
        if events:
            cur.executemany(_SIM_EVENTS, events)

    def _readings(self, cur: psycopg.Cursor[Any], readings: list[tuple[Any, ...]]) -> int:
        """Insert readings; returns how many were new. Usually none is stored yet, so they are copied
        straight into the hypertable; if one is (two uplinks of one instant, re-sent history), that copy
        fails on the primary key, is rolled back to its savepoint, and the staged upsert skips the
        duplicates. Both ways, `fresh_readings` lists what was inserted, for the change feed."""
        if len({(r[0], r[1]) for r in readings}) == len(readings):
            try:
                with self.conn.transaction():
                    self._copy(cur, "readings", _READING_ROW, readings)
            except psycopg.errors.UniqueViolation:
                pass
            else:
                cur.execute(_FRESH_READINGS, ([r[0] for r in readings], [r[1] for r in readings]))
                return len(readings)
        self._copy(cur, "stage_readings", _READING_ROW, readings)
        return int(cur.execute(_INSERT_READINGS).rowcount)

    def _devices(self, cur: psycopg.Cursor[Any], records: list[UplinkRecord], refs: dict[tuple[str, str], int]) -> None:
        merged: dict[tuple[str, str], list[Any]] = {}
        for r in records:
            d = r.device
            key = (d.application_id, d.device_id)
            row = merged.get(key)
            if row is None:
                brand, _, model = (d.model or "").partition("/")
                merged[key] = [d.device_id, d.application_id, d.source, d.dev_eui, d.join_eui, d.dev_addr,
                               brand or None, model or None, d.time, d.time]  # fmt: skip
            else:
                row[8], row[9] = min(row[8], d.time), max(row[9], d.time)
                row[5] = d.dev_addr or row[5]
        known = self._device_refs
        old = {key: known[key] for key in merged if key in known}
        if old:
            rows = [merged[key] for key in old]
            touched = cur.execute(
                _TOUCH_DEVICES, (list(old.values()), [r[8] for r in rows], [r[9] for r in rows], [r[5] for r in rows])
            ).rowcount
            if touched == len(old):
                refs.update(old)
            else:  # a device row went away under us (deleted by hand): upsert them all, forget the cache
                known.clear()
                old = {}
        if len(old) == len(merged):
            return
        self._copy(cur, "stage_devices", _DEVICE_ROW, (row for key, row in merged.items() if key not in old))
        cur.execute(_ADOPT_DEVICES)
        for ref, app, device_id in cur.execute(_UPSERT_DEVICES).fetchall():
            refs[app, device_id] = ref

    def _gateways(self, cur: psycopg.Cursor[Any], records: list[UplinkRecord]) -> None:
        merged: dict[str, list[Any]] = {}
        for r in records:
            t = r.device.time
            for g in r.gateways:
                row = merged.get(g.key)
                if row is None:
                    merged[g.key] = [g.key, g.gateway_id, g.eui, g.packet_broker, g.latitude, g.longitude, t, t, 1]
                else:
                    row[6], row[7], row[8] = min(row[6], t), max(row[7], t), row[8] + 1
        if merged:
            self._copy(cur, "stage_gateways", _GATEWAY_ROW, merged.values())
            cur.execute(_UPSERT_GATEWAYS)

    def _dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        """Upsert on the natural key: a message seen again raises `repeats` instead of adding a row."""
        if not dead:
            return
        by_key: dict[bytes, list[Any]] = {}
        for d in dead:
            key = d.key
            row = by_key.get(key)
            if row is None:
                by_key[key] = [key, d.time, _text(d.stage), _text(d.reason), _text(d.field), _text(d.error_class),
                               _text(d.topic), _text(d.device_id), d.raw, 1]  # fmt: skip
            else:
                row[9] += 1
        self._copy(self.conn.cursor(), "stage_dead", _DEAD_ROW, by_key.values())
        self.conn.execute(_UPSERT_DEAD)

    def _copy(
        self, cur: psycopg.Cursor[Any], table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        """Binary COPY: no text formatting here and no timestamp parsing on the server, per value."""
        key = (table, tuple(columns))
        stmt = self._copy_sql.get(key)
        if stmt is None:
            stmt = self._copy_sql[key] = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                sql.Identifier(table), _ids(columns)
            )
        with cur.copy(stmt) as copy:
            copy.set_types([self._oids[table, c] for c in columns])
            for row in rows:
                copy.write_row(row)


def _store_reject(record: UplinkRecord, exc: BaseException) -> DeadLetter:
    """The dead letter for a record the database refused, naming the column where it can."""
    column: str | None = None
    if isinstance(exc, ColumnBoundsError):
        column = exc.column
    elif isinstance(exc, psycopg.Error):
        column = exc.diag.column_name
        if column is None and exc.diag.context:
            match = _COLUMN_IN_CONTEXT.search(exc.diag.context)
            column = match[1] if match else None
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = f" ({column})" if column else ""
    return DeadLetter(
        record.device.time,
        "store",
        f"the database refused the uplink{where}: {message}",
        type(exc).__name__,
        record.topic,
        record.device.device_id,
        record.raw,
        column,
    )


def _text(value: str | None, limit: int = 2000) -> str | None:
    """Text the database will take: no NUL, valid UTF-8, bounded (dead letters must always be writable)."""
    if value is None:
        return None
    if not value.isascii() or "\x00" in value:
        value = value.replace("\x00", "\\x00").encode("utf-8", "replace").decode("utf-8")
    return value if len(value) <= limit else value[:limit] + "..."


def device_models(conn: psycopg.Connection) -> dict[tuple[str, str], str]:
    """(application_id, device_id) -> `brand/model` for every device whose model is known (the decoder
    choice). A registry entry without an application is keyed with application_id ''."""
    rows = conn.execute(
        "SELECT application_id, device_id, brand_id || '/' || model_id FROM devices "
        "WHERE brand_id <> '' AND model_id <> ''"
    ).fetchall()
    return {(app, device): model for app, device, model in rows}


def newest_tts(conn: psycopg.Connection) -> datetime | None:
    """The newest time of a real TTS uplink we hold: where a backfill starts. From the small devices
    table (whose last_seen never runs ahead of the clock), not a scan of the uplinks hypertable."""
    row = conn.execute("SELECT max(last_seen) FROM devices WHERE source = 'tts'").fetchone()
    return row[0] if row else None


__all__ = [
    "CHANNEL",
    "ColumnBoundsError",
    "IngestWriter",
    "Outage",
    "UplinkRow",
    "check_bounds",
    "device_models",
    "is_outage",
    "newest_tts",
]
