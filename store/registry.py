"""The device registry in the database: import a registry file all-or-nothing, export one.

`import_devices` parses and checks the file (store/registry_csv.py), then, in one transaction that
holds off concurrent registry writes (ingest auto-registering a device waits a moment), reads the
stored devices the file names, plans the upsert against them and applies it: every row or none.
Only the file's columns are written; a column it lacks keeps its stored value.

Devices created here have `source` 'manual' and, without an `application_id`, belong to no
application until ingest hears the name from one (store/writer.py adopts them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from store import queries, registry_csv
from store.records import Device
from store.registry_csv import NUMBER_COLUMNS, DeviceUpdate, NewDevice, RegistryError

# SHARE ROW EXCLUSIVE conflicts with itself and with the row locks of INSERT/UPDATE, not with reads:
# no device of these names can appear or change between reading them and writing the plan.
_LOCK = "LOCK TABLE devices IN SHARE ROW EXCLUSIVE MODE"
_NAMED = """
SELECT id, device_id, application_id, source, kind, brand_id, model_id, name, latitude, longitude,
       sensor_height_mm, outlet_invert_mm, care_room, care_group, attributes, first_seen, last_seen,
       count(*) OVER (PARTITION BY device_id) > 1 AS shared_name
FROM devices WHERE device_id = ANY(%s) ORDER BY device_id, application_id"""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did (or, with `applied` false, would have done: a dry run or a file with errors,
    in which case nothing at all was written)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RegistryError] = field(default_factory=list)
    applied: bool = False


def import_devices(conn: psycopg.Connection[Any], data: bytes | str, *, dry_run: bool = False) -> ImportResult:
    """Apply a registry file in one transaction, or nothing of it when any row is wrong (`errors`
    lists every problem found). `dry_run` checks against the database and reports, writing nothing."""
    parsed = registry_csv.parse(data)
    if not parsed.entries:
        return ImportResult(errors=parsed.errors)
    with conn.transaction() as tx:
        conn.execute(_LOCK)
        with conn.cursor(row_factory=class_row(Device)) as cur:
            stored = cur.execute(_NAMED, (parsed.device_ids,)).fetchall()
        plan = registry_csv.plan(parsed, stored)
        if plan.errors or dry_run:
            raise psycopg.Rollback(tx)  # leaves the `with` block, having written nothing
        _insert(conn, plan.columns, plan.creates)
        _update(conn, plan.columns, plan.updates)
        return ImportResult(len(plan.creates), len(plan.updates), plan.unchanged, applied=True)
    return ImportResult(len(plan.creates), len(plan.updates), plan.unchanged, plan.errors)


def _array_type(column: str) -> str:
    return "integer[]" if column == "id" else "float8[]" if column in NUMBER_COLUMNS else "text[]"


def _unnest(columns: Sequence[str]) -> sql.Composable:
    return sql.SQL("unnest({})").format(sql.SQL(", ").join(sql.SQL("%s::" + _array_type(c)) for c in columns))


def _insert(conn: psycopg.Connection[Any], columns: Sequence[str], creates: Sequence[NewDevice]) -> None:
    if not creates:
        return
    names = ["application_id", "device_id", "source", *columns]
    query = sql.SQL("INSERT INTO devices ({cols}) SELECT * FROM {rows}").format(
        cols=sql.SQL(", ").join(map(sql.Identifier, names)), rows=_unnest(names)
    )
    arrays: list[list[Any]] = [
        [c.application_id for c in creates],
        [c.device_id for c in creates],
        ["manual"] * len(creates),
        *([c.values[column] for c in creates] for column in columns),
    ]
    conn.execute(query, arrays)


def _update(conn: psycopg.Connection[Any], columns: Sequence[str], updates: Sequence[DeviceUpdate]) -> None:
    if not updates:
        return
    names = ["id", "application_id", *columns]
    query = sql.SQL("UPDATE devices d SET {sets} FROM {rows} AS v ({cols}) WHERE d.id = v.id").format(
        sets=sql.SQL(", ").join(
            sql.SQL("{c} = v.{c}").format(c=sql.Identifier(column)) for column in ["application_id", *columns]
        ),
        rows=_unnest(names),
        cols=sql.SQL(", ").join(map(sql.Identifier, names)),
    )
    arrays: list[list[Any]] = [
        [u.ref for u in updates],
        [u.application_id for u in updates],
        *([u.values[column] for u in updates] for column in columns),
    ]
    conn.execute(query, arrays)


def export_devices(conn: psycopg.Connection[Any], out: TextIO) -> int:
    """Every registered device as a registry file (by name, then application) that `import_devices`
    takes back as a no-op; returns how many devices were written."""
    return registry_csv.write_devices(queries.devices(conn), out)
