"""SQL of `alert_notices` (migration 0009): notices people's actions hand to the alert worker.

Why a queue and not the outbox: the API's database roles have no grant on `outbox`, whose rows are
notification payloads and delivery targets, and a notification needs the rules file, the routes'
environment and every silence, which only the worker has. So a person's resolve through the API
hands the worker a notice (`hand_over`, through a SECURITY DEFINER function, the only way an API role
can write the table) and the worker turns it into the same outbox rows the CLI's resolve writes.

`take` deletes the notices it returns, skipping rows another worker holds, so the delete commits
with the outbox rows made from them or not at all: each notice becomes notifications exactly once,
and one handed over while no worker runs waits in the table until one starts. Nothing here commits.
"""

from __future__ import annotations

import psycopg

#: The alert_log action `Engine._notify` writes for a resolved notice (how `resolved_sent` knows).
_NOTIFIED_RESOLVED = "notified resolved"


def hand_over(conn: psycopg.Connection, alert_id: int, event: str) -> None:
    """Queue `event` for an alert resolved in this transaction (the function ignores any other)."""
    conn.execute("SELECT hand_over_alert_notice(%s, %s)", (alert_id, event))


def take(conn: psycopg.Connection, limit: int = 100) -> list[tuple[int, str]]:
    """(alert_id, event) of up to `limit` waiting notices, oldest first, removed from the queue when
    the caller's transaction commits; rows another transaction holds are skipped, not waited for."""
    rows = conn.execute(
        "DELETE FROM alert_notices WHERE id IN "
        "(SELECT id FROM alert_notices ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, alert_id, event",
        (limit,),
    ).fetchall()
    return [(alert_id, event) for _, alert_id, event in sorted(rows)]


def waiting(conn: psycopg.Connection) -> int:
    """How many notices wait for a worker."""
    row = conn.execute("SELECT count(*) FROM alert_notices").fetchone()
    return int(row[0]) if row else 0


def resolved_sent(conn: psycopg.Connection, alert_id: int) -> bool:
    """Whether the alert's resolved notice has been made already (by either path): the guard that
    keeps a second resolve path, or a notice handed over twice, from telling people twice."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM alert_log WHERE alert_id = %s AND action = %s)", (alert_id, _NOTIFIED_RESOLVED)
    ).fetchone()
    return bool(row and row[0])


__all__ = ["hand_over", "resolved_sent", "take", "waiting"]
