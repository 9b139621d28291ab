"""One device's readings for the API: raw rows a page at a time, or per-bucket statistics computed
by TimescaleDB's `time_bucket` in SQL.

`readings` is wide: one row per device and instant, one column per quantity (READING_COLUMNS), most
of them NULL for any one device (a gully has no `in_bed`). Statistics are per quantity over the
bucket's non-NULL values; a boolean counts as 0 or 1, so its mean is the fraction of readings that
were true.

Both run under the request's role: a device the role cannot see has no readings for it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from store.records import READING_COLUMNS, Reading

#: The quantities stored as booleans (aggregated as 0/1).
BOOLEAN_QUANTITIES: frozenset[str] = frozenset(
    {"distance_valid", "occupied", "motion", "tilted", "interrupt", "fall_detected", "lying_down", "in_bed"}
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_RAW = sql.SQL("""
SELECT r.device_ref, d.device_id, d.application_id, r.time, {cols}
FROM readings r JOIN devices d ON d.id = r.device_ref
WHERE r.device_ref = %(ref)s AND r.time >= %(start)s AND r.time < %(end)s
ORDER BY r.time LIMIT %(limit)s""").format(cols=sql.SQL(", ").join(sql.Identifier("r", c) for c in READING_COLUMNS))


def _stats(column: str) -> sql.Composable:
    value: sql.Composable = sql.Identifier(column)
    if column in BOOLEAN_QUANTITIES:
        value = sql.SQL("({}::int)").format(value)
    return sql.SQL("min({v})::float8, max({v})::float8, avg({v})::float8, count({v})").format(v=value)


@functools.cache
def _buckets_query(columns: tuple[str, ...]) -> sql.Composed:
    """Only the columns asked for are aggregated: a gully chart's two over a year of 15-minute readings
    (35,000 rows) is one index range scan, well inside the one-year chart's 150 ms."""
    return sql.SQL("""
SELECT time_bucket(%(width)s::interval, time) AS bucket, count(*) AS readings, {stats}
FROM readings WHERE device_ref = %(ref)s AND time >= %(start)s AND time < %(end)s
GROUP BY bucket ORDER BY bucket""").format(stats=sql.SQL(", ").join(_stats(c) for c in columns))


@dataclass(frozen=True, slots=True)
class Stats:
    """One quantity over one bucket: its non-NULL values' extremes, mean and number."""

    min: float
    max: float
    mean: float
    count: int


@dataclass(frozen=True, slots=True)
class Bucket:
    """The readings of one bucket [start, start + width): how many rows, and per quantity with any
    value, its statistics."""

    start: datetime
    readings: int
    quantities: dict[str, Stats]


def raw(
    conn: psycopg.Connection, ref: int, start: datetime, end: datetime, *, after: datetime | None, limit: int
) -> list[Reading]:
    """Readings in [start, end) after `after` (the cursor), oldest first, at most `limit`."""
    if after is not None and after >= start:
        start = after + timedelta(microseconds=1)  # timestamptz has microseconds: the next possible key
    with conn.cursor(row_factory=class_row(Reading)) as cur:
        return cur.execute(_RAW, {"ref": ref, "start": start, "end": end, "limit": limit}).fetchall()


def buckets(
    conn: psycopg.Connection,
    ref: int,
    width: timedelta,
    start: datetime,
    end: datetime,
    columns: Sequence[str] = READING_COLUMNS,
) -> list[Bucket]:
    """Per-bucket statistics of `columns` (default: every quantity) over the readings in [start, end),
    buckets aligned as `floor(t, width)`; buckets without readings are left out."""
    unknown = set(columns) - set(READING_COLUMNS)
    if unknown:
        raise ValueError(f"not reading columns: {', '.join(sorted(unknown))}")
    query = _buckets_query(tuple(columns))
    rows = conn.execute(query, {"width": width, "ref": ref, "start": start, "end": end}).fetchall()
    return [_bucket(row, columns) for row in rows]


def _bucket(row: tuple[Any, ...], columns: Sequence[str]) -> Bucket:
    quantities: dict[str, Stats] = {}
    for i, column in enumerate(columns):
        low, high, mean, count = row[2 + 4 * i : 6 + 4 * i]
        if count:
            quantities[column] = Stats(low, high, mean, count)
    return Bucket(row[0], row[1], quantities)


def floor(t: datetime, width: timedelta) -> datetime:
    """The start of the bucket holding `t`: what `time_bucket(width, t)` gives for widths that divide a
    day (TimescaleDB's default origin, 2000-01-03, is a multiple of a day from the Unix epoch)."""
    return t - (t - _EPOCH) % width


__all__ = ["BOOLEAN_QUANTITIES", "Bucket", "Stats", "buckets", "floor", "raw"]
