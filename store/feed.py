"""The change feed: what each committed ingest batch stored, for consumers that must see every reading
exactly once (the alert worker, the dashboard's live view).

Why a feed and not "readings newer than the last one I saw": ingest stores late and out-of-order
readings (backfill, re-sent device history, a second worker's batch committing later), so a time
watermark misses data. The writer appends one `changes` row per batch in the batch's own transaction,
with exactly the (device, time) keys it inserted, and takes its id from the `feed_head` row lock
just before commit, so ids are in commit order. A consumer keeps a durable cursor (`feed_cursors`) and
reads `id > cursor`; it moves the cursor in the same transaction as the work the changes caused, so a
restart neither misses nor repeats a change. `NOTIFY lorawatch_changes` is only a wake-up: a consumer
that missed it (it was down) still finds everything by its cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import args_row, class_row

from store.records import READING_COLUMNS, Change, Event, Reading
from store.writer import CHANNEL

_CHANGES = """
SELECT id, committed_at, uplinks, readings, events, reading_devices, reading_times, event_devices, event_times,
       event_kinds, event_keys, seen_devices, seen_times, simulated_uplinks, seen_gateways
FROM changes WHERE id > %s ORDER BY id LIMIT %s"""
#: The same without the inserted rows' keys, for a consumer that reads the rows themselves (the engine).
_CHANGES_SEEN = _CHANGES.replace(
    "reading_devices, reading_times, event_devices, event_times,\n       event_kinds, event_keys",
    "NULL, NULL, NULL, NULL,\n       NULL, NULL",
)
_READINGS = sql.SQL("""
SELECT r.device_ref, d.device_id, d.application_id, r.time, {cols}
FROM changes c, unnest(c.reading_devices, c.reading_times) AS k(device_ref, time)
JOIN readings r ON r.device_ref = k.device_ref AND r.time = k.time
JOIN devices d ON d.id = r.device_ref
WHERE c.id = ANY(%s)
ORDER BY r.device_ref, r.time""").format(cols=sql.SQL(", ").join(sql.Identifier("r", c) for c in READING_COLUMNS))
_EVENTS = """
SELECT e.device_ref, d.device_id, d.application_id, e.time, e.kind, e.event_key, e.attrs, e.uplink_key
FROM changes c, unnest(c.event_devices, c.event_times, c.event_kinds, c.event_keys) AS k(device_ref, time, kind, key)
JOIN events e ON e.device_ref = k.device_ref AND e.time = k.time AND e.kind = k.kind AND e.event_key = k.key
JOIN devices d ON d.id = e.device_ref
WHERE c.id = ANY(%s)
ORDER BY e.device_ref, e.time, e.kind, e.event_key"""

_SIM_READINGS = sql.SQL("""
SELECT r.device_ref, d.device_id, d.application_id, r.time, {cols}
FROM simulated_readings r JOIN devices d ON d.id = r.device_ref
WHERE r.uplink_key = ANY(%s) ORDER BY r.device_ref, r.time""").format(
    cols=sql.SQL(", ").join(sql.Identifier("r", c) for c in READING_COLUMNS)
)
_SIM_EVENTS = """
SELECT e.device_ref, d.device_id, d.application_id, e.time, e.kind, e.event_key, e.attrs, e.uplink_key
FROM simulated_events e JOIN devices d ON d.id = e.device_ref
WHERE e.uplink_key = ANY(%s) ORDER BY e.device_ref, e.time, e.kind, e.event_key"""


def _change(row: Sequence[Any]) -> Change:
    return Change(
        id=row[0],
        committed_at=row[1],
        uplinks=row[2],
        readings=row[3],
        events=row[4],
        reading_keys=list(zip(row[5], row[6], strict=True)) if row[5] is not None else [],
        event_keys=list(zip(row[7], row[8], row[9], row[10], strict=True)) if row[7] is not None else [],
        seen=list(zip(row[11], row[12], strict=True)),
        simulated_uplinks=list(row[13]),
        # changes written before migration 0006 have no gateways: one empty entry per seen device
        seen_gateways=[tuple(g for g in text.split(",") if g) for text in row[14]] or [()] * len(row[11]),
    )


class ChangeFeed:
    """One consumer's view of the feed on one connection (the caller owns its transactions)."""

    def __init__(self, conn: psycopg.Connection, consumer: str) -> None:
        self.conn = conn
        self.consumer = consumer

    def position(self) -> int:
        """The consumer's durable cursor: the id of the last change it finished (0 = none yet)."""
        self.conn.execute("INSERT INTO feed_cursors (consumer) VALUES (%s) ON CONFLICT DO NOTHING", (self.consumer,))
        row = self.conn.execute("SELECT position FROM feed_cursors WHERE consumer = %s", (self.consumer,)).fetchone()
        return int(row[0]) if row else 0

    def read(self, after: int, limit: int = 100, *, keys: bool = True) -> list[Change]:
        """Changes committed after id `after`, oldest first. `keys=False`: without the inserted rows'
        keys (`reading_keys` and `event_keys` left empty), for a consumer that reads the rows through
        `readings` and `events` anyway and would only pay to parse them."""
        query = _CHANGES if keys else _CHANGES_SEEN
        return [_change(row) for row in self.conn.execute(query, (after, limit)).fetchall()]

    def readings(self, changes: Sequence[Change]) -> list[Reading]:
        """Exactly the readings those changes inserted, by device then time. Rows are passed to
        Reading by position (its fields are in the query's column order: tests/unit/store/test_records_order.py
        holds them to it), which spares a dict per row of the busiest query the engine runs."""
        with self.conn.cursor(row_factory=args_row(Reading)) as cur:
            return cur.execute(_READINGS, ([c.id for c in changes],)).fetchall()

    def events(self, changes: Sequence[Change]) -> list[Event]:
        """Exactly the events those changes inserted, by device then time."""
        with self.conn.cursor(row_factory=class_row(Event)) as cur:
            return cur.execute(_EVENTS, ([c.id for c in changes],)).fetchall()

    def simulated_readings(self, changes: Sequence[Change]) -> list[Reading]:
        """The readings of those changes' simulated uplinks (simulated_readings), by device then time."""
        keys = [k for c in changes for k in c.simulated_uplinks]
        if not keys:
            return []
        with self.conn.cursor(row_factory=args_row(Reading)) as cur:
            return cur.execute(_SIM_READINGS, (keys,)).fetchall()

    def simulated_events(self, changes: Sequence[Change]) -> list[Event]:
        """The events of those changes' simulated uplinks (simulated_events), by device then time."""
        keys = [k for c in changes for k in c.simulated_uplinks]
        if not keys:
            return []
        with self.conn.cursor(row_factory=class_row(Event)) as cur:
            return cur.execute(_SIM_EVENTS, (keys,)).fetchall()

    def advance(self, position: int) -> None:
        """Move the cursor (in the caller's transaction, with the work the changes caused)."""
        self.conn.execute(
            "UPDATE feed_cursors SET position = %s, updated_at = now() WHERE consumer = %s AND position <= %s",
            (position, self.consumer, position),
        )


class Waker:
    """LISTENs for the feed's wake-up on an autocommit connection of its own."""

    def __init__(self, conninfo: str) -> None:
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))

    def wait(self, timeout: float) -> int | None:
        """Block until a change is committed (its id) or `timeout` passes (None)."""
        newest: int | None = None
        for notify in self.conn.notifies(timeout=timeout, stop_after=1):
            newest = int(notify.payload) if notify.payload.isdigit() else newest
        return newest

    def close(self) -> None:
        self.conn.close()


def newest_change(conn: psycopg.Connection) -> int:
    """The id of the newest committed change (0 when the feed is empty)."""
    row = conn.execute("SELECT coalesce(max(id), 0) FROM changes").fetchone()
    return int(row[0]) if row else 0


__all__ = ["ChangeFeed", "Waker", "newest_change"]
