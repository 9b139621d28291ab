"""The notification outbox: enqueue in the alert change's transaction, claim with a lease, mark the outcome.

Why an outbox and not "send from the engine": a notification is a row written in the same transaction
as the alert transition that causes it, so it exists exactly when the transition does, and a channel
that is down, or a worker that restarts, cannot lose it. A separate delivery loop (alerts/delivery.py)
sends the rows with retries.

**The claim pattern** (at-least-once, never two senders at once):

1. `claim_due` takes up to `limit` pending rows whose `next_attempt_at` has come, locked with
   `FOR UPDATE SKIP LOCKED` (a second loop skips rows the first is claiming instead of waiting), adds
   one to `attempts` and moves `next_attempt_at` forward by a *lease*. The caller commits at once: the
   lease is what keeps every other loop away while the row is being sent, and it only counts once
   committed.
2. The caller sends outside any transaction (a slow SMTP server never holds a lock or a connection
   in a transaction).
3. `mark_sent` / `mark_failed` record the outcome. `mark_failed` only touches the row if `attempts`
   is still the claimed one, so a sender that outlived its lease cannot overwrite a newer claim's result.

A process killed between 1 and 3 leaves the row pending with its lease running: when the lease ends
it is due again and is sent again, with the same `idempotency_key` (in the body and a header), which
is how a receiver drops the repeat. The lease must therefore be longer than the slowest send; the
delivery loop's timeouts keep a send well inside it.

`enqueue` sends `NOTIFY lorawatch_outbox` (delivered on commit), so an idle delivery loop wakes at
once instead of at its next poll; the notification is only a wake-up, the rows are the truth.

Every outcome that ends a row (sent, suppressed because simulated, dead) is also a row in
`alert_log` (actor `delivery`) in the same transaction: the audit of every send care data needs.
Like the rest of store/, nothing here commits: the caller owns its transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import class_row

from store.records import OutboxEntry, OutboxRow

#: The NOTIFY channel `enqueue` wakes delivery loops on.
CHANNEL = "lorawatch_outbox"
#: `last_error` of a row sent nowhere because its alert came from simulated uplinks (state 'sent').
SUPPRESSED = "simulated: not delivered"
#: The default lease: how long a claimed row is kept from other delivery loops.
DEFAULT_LEASE = timedelta(minutes=2)

_COLUMNS = (
    "o.id, o.alert_id, o.event, o.channel, o.route, o.target, o.payload, o.idempotency_key, o.state, "
    "o.attempts, o.next_attempt_at, o.last_error, o.created_at, o.sent_at"
)
# Missing or false/null `simulated` (top level, or in the nested `alert`) means a real alert; any other
# value is treated as simulated (a malformed flag must not make a simulated alert reach a real channel).
_SIMULATED = (
    "(coalesce(o.payload -> 'simulated' NOT IN ('false'::jsonb, 'null'::jsonb), false)"
    " OR coalesce(o.payload #> '{alert,simulated}' NOT IN ('false'::jsonb, 'null'::jsonb), false)"
    " OR coalesce((SELECT a.simulated FROM alerts a WHERE a.id = o.alert_id), false)) AS simulated"
)

_ENQUEUE = """
INSERT INTO outbox (alert_id, event, channel, route, target, payload, idempotency_key, next_attempt_at)
SELECT u.alert_id, u.event, u.channel, u.route, u.target, u.payload::jsonb, u.key, coalesce(%s::timestamptz, now())
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
     AS u(alert_id, event, channel, route, target, payload, key)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id"""

_CLAIM = f"""
WITH due AS (
    SELECT id FROM outbox
    WHERE state = 'pending' AND next_attempt_at <= %(now)s
    ORDER BY next_attempt_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE outbox o SET attempts = o.attempts + 1, next_attempt_at = %(lease_until)s
FROM due WHERE o.id = due.id
RETURNING {_COLUMNS}, {_SIMULATED}"""

_ROWS = f"SELECT {_COLUMNS}, {_SIMULATED} FROM outbox o"

_AUDIT = """
INSERT INTO alert_log (alert_id, at, actor, action, note)
VALUES (%s, %s, 'delivery', %s, %s)"""


def enqueue(conn: psycopg.Connection, entries: Sequence[OutboxEntry], *, now: datetime | None = None) -> list[int]:
    """Insert notifications (a repeated `idempotency_key` is skipped) and wake the delivery loops.

    Call it inside the transaction of the alert change that causes the notifications. `now` is when
    they become due: the engine's clock (the data's own time in replay); None = the database's now().
    Returns the ids of the rows actually inserted."""
    if not entries:
        return []
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
    for e in entries:
        payload = orjson.dumps(dict(e.payload)).decode()
        values = (e.alert_id, e.event, e.channel, e.route, e.target, payload, e.idempotency_key)
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    ids = sorted(int(row[0]) for row in conn.execute(_ENQUEUE, (now, *columns)).fetchall())
    if ids:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(ids[-1])))
    return ids


def claim_due(
    conn: psycopg.Connection, now: datetime, limit: int, *, lease: timedelta = DEFAULT_LEASE
) -> list[OutboxRow]:
    """Lease up to `limit` rows due at `now` (oldest due first): each gets `attempts + 1` and
    `next_attempt_at = now + lease`. Commit before sending (see the module docstring)."""
    with conn.cursor(row_factory=class_row(OutboxRow)) as cur:
        claimed = cur.execute(_CLAIM, {"now": now, "limit": limit, "lease_until": now + lease}).fetchall()
    return sorted(claimed, key=lambda r: r.id)


def mark_sent(conn: psycopg.Connection, outbox_id: int, at: datetime, *, note: str | None = None) -> bool:
    """The row was delivered at `at` (`note`, e.g. recipients a server refused, goes in `last_error`).

    A delivery that succeeded counts even if the row's lease had run out or it had been given up on
    meanwhile: it did arrive. False when it was already marked sent (nothing changes then)."""
    return _finish(conn, outbox_id, at, "sent", note, "notified", None)


def mark_suppressed(conn: psycopg.Connection, outbox_id: int, at: datetime) -> bool:
    """The row belongs to a simulated alert: state 'sent' with `last_error` SUPPRESSED, nothing sent."""
    return _finish(conn, outbox_id, at, "sent", SUPPRESSED, "notification_suppressed", None)


def mark_failed(
    conn: psycopg.Connection,
    outbox_id: int,
    error: str,
    next_attempt_at: datetime,
    dead: bool,
    *,
    attempt: int | None = None,
) -> bool:
    """An attempt failed: retry at `next_attempt_at`, or give up (`dead`; then pass the time it died as
    `next_attempt_at`, it is also the audit row's time). With `attempt`, only if the row's `attempts`
    is still that claim's (a sender that outlived its lease changes nothing). False if nothing changed."""
    if dead:
        return _finish(conn, outbox_id, next_attempt_at, "dead", error, "notification_failed", attempt)
    row = conn.execute(
        "UPDATE outbox SET last_error = %s, next_attempt_at = %s "
        "WHERE id = %s AND state = 'pending' AND (%s::integer IS NULL OR attempts = %s) RETURNING id",
        (error, next_attempt_at, outbox_id, attempt, attempt),
    ).fetchone()
    return row is not None


def _finish(
    conn: psycopg.Connection,
    outbox_id: int,
    at: datetime,
    state: str,
    error: str | None,
    action: str,
    attempt: int | None,
) -> bool:
    if state == "sent":
        query = (
            "UPDATE outbox SET state = 'sent', sent_at = %s, last_error = %s, next_attempt_at = %s "
            "WHERE id = %s AND state <> 'sent' RETURNING alert_id, event, channel, route"
        )
        params: tuple[Any, ...] = (at, error, at, outbox_id)
    else:
        query = (
            "UPDATE outbox SET state = 'dead', last_error = %s, next_attempt_at = %s "
            "WHERE id = %s AND state = 'pending' AND (%s::integer IS NULL OR attempts = %s) "
            "RETURNING alert_id, event, channel, route"
        )
        params = (error, at, outbox_id, attempt, attempt)
    row = conn.execute(query, params).fetchone()
    if row is None:
        return False
    alert_id, event, channel, route = row
    if alert_id is not None:
        note = f"outbox {outbox_id}: {event} by {channel} via route {route}"
        if error and state == "dead":
            note += f": {error}"
        conn.execute(_AUDIT, (alert_id, at, action, note))
    return True


def requeue_dead(conn: psycopg.Connection, now: datetime, ids: Sequence[int] | None = None) -> int:
    """Make dead rows (all, or those in `ids`) pending again, due at `now`, with a fresh attempt count:
    for after a channel's configuration is fixed. Their age still counts from `created_at`, so each
    gets at least one more attempt. Returns how many rows changed."""
    cur = conn.execute(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = %s "
        "WHERE state = 'dead' AND (%s::bigint[] IS NULL OR id = ANY(%s::bigint[]))",
        (now, None if ids is None else list(ids), None if ids is None else list(ids)),
    )
    return cur.rowcount


def rows(conn: psycopg.Connection, *, alert_id: int | None = None) -> list[OutboxRow]:
    """Every outbox row (or one alert's), by id: for status pages, tests and the audit export."""
    query = _ROWS + (" WHERE o.alert_id = %s" if alert_id is not None else "") + " ORDER BY o.id"
    with conn.cursor(row_factory=class_row(OutboxRow)) as cur:
        return cur.execute(query, (alert_id,) if alert_id is not None else ()).fetchall()


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """The outbox at a glance: `due` is the part of `pending` whose time has come (a growing number
    means delivery is behind or a channel is down); `suppressed` is the part of `sent` never sent
    because simulated; `oldest_pending_at` is the `created_at` of the oldest undelivered row."""

    pending: int
    due: int
    sent: int
    suppressed: int
    dead: int
    oldest_pending_at: datetime | None


def counts(conn: psycopg.Connection, now: datetime) -> OutboxCounts:
    """Rows by state (see OutboxCounts)."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE state = 'pending'), "
        "count(*) FILTER (WHERE state = 'pending' AND next_attempt_at <= %s), "
        "count(*) FILTER (WHERE state = 'sent'), "
        "count(*) FILTER (WHERE state = 'sent' AND last_error = %s), "
        "count(*) FILTER (WHERE state = 'dead'), "
        "min(created_at) FILTER (WHERE state = 'pending') FROM outbox",
        (now, SUPPRESSED),
    ).fetchone()
    assert row is not None
    return OutboxCounts(int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]), row[5])


class OutboxWaker:
    """LISTENs for `enqueue`'s wake-up on an autocommit connection of its own."""

    def __init__(self, conninfo: str) -> None:
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))

    def wait(self, timeout: float) -> bool:
        """Block until something is enqueued (True) or `timeout` seconds pass (False)."""
        return any(True for _ in self.conn.notifies(timeout=timeout, stop_after=1))

    def close(self) -> None:
        self.conn.close()


__all__ = [
    "CHANNEL",
    "DEFAULT_LEASE",
    "SUPPRESSED",
    "OutboxCounts",
    "OutboxWaker",
    "claim_due",
    "counts",
    "enqueue",
    "mark_failed",
    "mark_sent",
    "mark_suppressed",
    "requeue_dead",
    "rows",
]
