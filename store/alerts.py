"""SQL of the alert lifecycle: alerts, their log, rule state, silences. The engine (alerts/engine.py)
decides; this module only reads and writes, inside the caller's transaction.

Concurrency: `alerts_one_open` (a partial unique index) allows one open alert per (rule, subject), so
an insert that loses a race does nothing and returns None, and the caller re-reads; rule state rows
are read FOR UPDATE, so two workers evaluating the same subject take turns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from store.queries import _DEVICE
from store.records import Alert, Device

OPEN_STATES = ("pending", "firing", "acknowledged")

_INSERT = """
INSERT INTO alerts (rule, category, severity, subject, device_ref, device_id, application_id, gateway_id, kind,
                    state, simulated, late, opened_at, firing_at, resolved_at, value, summary, details,
                    device_alarm_id)
VALUES (%(rule)s, %(category)s, %(severity)s, %(subject)s, %(device_ref)s, %(device_id)s, %(application_id)s,
        %(gateway_id)s, %(kind)s, %(state)s, %(simulated)s, %(late)s, %(opened_at)s, %(firing_at)s,
        %(resolved_at)s, %(value)s, %(summary)s, %(details)s, %(device_alarm_id)s)
ON CONFLICT (rule, subject) WHERE state <> 'resolved' DO NOTHING
RETURNING *"""


def devices_by_ref(conn: psycopg.Connection, refs: Iterable[int]) -> dict[int, Device]:
    """The registry rows of these devices.id (store.queries' device query, by surrogate id)."""
    with conn.cursor(row_factory=class_row(Device)) as cur:
        rows = cur.execute(f"SELECT * FROM ({_DEVICE}) d WHERE id = ANY(%s)", (list(refs),)).fetchall()
    return {d.id: d for d in rows}


def open_alerts(conn: psycopg.Connection, subjects: Sequence[str] | None = None) -> dict[tuple[str, str], Alert]:
    """Open alerts by (rule, subject), locked for this transaction; all of them when `subjects` is None."""
    query = "SELECT * FROM alerts WHERE state <> 'resolved'"
    params: tuple[Any, ...] = ()
    if subjects is not None:
        query += " AND subject = ANY(%b)"
        params = (list(subjects),)
    with conn.cursor(row_factory=class_row(Alert)) as cur:
        rows = cur.execute(query + " ORDER BY id FOR UPDATE", params).fetchall()
    return {(a.rule, a.subject): a for a in rows}


def insert_alert(conn: psycopg.Connection, fields: Mapping[str, Any]) -> Alert | None:
    """A new alert; None when another one is already open for the rule and subject."""
    values = {"details": Jsonb(fields.get("details") or {}), "device_alarm_id": None, "gateway_id": None, **fields}
    values["details"] = Jsonb(values["details"]) if not isinstance(values["details"], Jsonb) else values["details"]
    with conn.cursor(row_factory=class_row(Alert)) as cur:
        return cur.execute(_INSERT, values).fetchone()


def update_alert(conn: psycopg.Connection, alert_id: int, fields: Mapping[str, Any]) -> Alert:
    sets = ", ".join(f"{name} = %({name})s" for name in fields)
    values = {k: Jsonb(v) if k == "details" else v for k, v in fields.items()}
    with conn.cursor(row_factory=class_row(Alert)) as cur:
        row = cur.execute(
            f"UPDATE alerts SET {sets}, updated_at = now() WHERE id = %(id)s RETURNING *",
            {**values, "id": alert_id},
        ).fetchone()
    if row is None:
        raise LookupError(f"no alert {alert_id}")
    return row


def log(
    conn: psycopg.Connection,
    alert_id: int,
    actor: str,
    action: str,
    *,
    from_state: str | None = None,
    to_state: str | None = None,
    note: str | None = None,
    data_time: datetime | None = None,
) -> None:
    conn.execute(
        "INSERT INTO alert_log (alert_id, actor, action, from_state, to_state, note, data_time) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (alert_id, actor, action, from_state, to_state, note, data_time),
    )


def alert_log(conn: psycopg.Connection, alert_id: int) -> list[tuple[Any, ...]]:
    """(at, actor, action, from_state, to_state, note) of one alert, oldest first."""
    return conn.execute(
        "SELECT at, actor, action, from_state, to_state, note FROM alert_log WHERE alert_id = %s ORDER BY id",
        (alert_id,),
    ).fetchall()


def load_states(conn: psycopg.Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Stored rule state by (rule, subject), locked for this transaction."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    rows = conn.execute(
        "SELECT rule, subject, state FROM rule_state WHERE (rule, subject) IN "
        "(SELECT * FROM unnest(%b::text[], %b::text[])) ORDER BY rule, subject FOR UPDATE",
        ([k[0] for k in keys], [k[1] for k in keys]),
    ).fetchall()
    return {(rule, subject): state for rule, subject, state in rows}


def all_states(conn: psycopg.Connection, rules: Sequence[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every stored state of these rules, locked (the clock's pass)."""
    rows = conn.execute(
        "SELECT rule, subject, state FROM rule_state WHERE rule = ANY(%s) ORDER BY rule, subject FOR UPDATE",
        (list(rules),),
    ).fetchall()
    return {(rule, subject): state for rule, subject, state in rows}


def save_states(
    conn: psycopg.Connection, states: Mapping[tuple[str, str], tuple[dict[str, Any], datetime | None]]
) -> None:
    """(rule, subject) -> (state, due_at): `due_at` is when the clock next has something to decide for
    it (None: only new data can change it). The arrays go in binary (%b): their text form costs a
    regular-expression escape per element, which was a quarter of a replay's time."""
    if not states:
        return
    keys = sorted(states)
    conn.execute(
        "INSERT INTO rule_state (rule, subject, state, due_at) "
        "SELECT * FROM unnest(%b::text[], %b::text[], %b::jsonb[], %b::timestamptz[]) "
        "ON CONFLICT (rule, subject) DO UPDATE SET state = excluded.state, due_at = excluded.due_at, "
        "updated_at = now()",
        ([k[0] for k in keys], [k[1] for k in keys], [Jsonb(states[k][0]) for k in keys], [states[k][1] for k in keys]),
    )


def due_states(conn: psycopg.Connection, now: datetime) -> dict[tuple[str, str], dict[str, Any]]:
    """The states the clock has something to decide for at `now`, locked (the clock's pass)."""
    rows = conn.execute(
        "SELECT rule, subject, state FROM rule_state WHERE due_at <= %s ORDER BY rule, subject FOR UPDATE", (now,)
    ).fetchall()
    return {(rule, subject): state for rule, subject, state in rows}


def next_due(conn: psycopg.Connection) -> datetime | None:
    """The earliest due time of any state (None: nothing is waiting on the clock)."""
    row = conn.execute("SELECT min(due_at) FROM rule_state").fetchone()
    return row[0] if row else None


def upcoming_due(conn: psycopg.Connection, limit: int) -> list[datetime]:
    """The earliest `limit` distinct due times, soonest first."""
    rows = conn.execute(
        "SELECT DISTINCT due_at FROM rule_state WHERE due_at IS NOT NULL ORDER BY due_at LIMIT %s", (limit,)
    ).fetchall()
    return [row[0] for row in rows]


def release_inhibited(conn: psycopg.Connection, gateway_id: str, at: datetime) -> None:
    """Devices held back by this gateway's outage are judged again by the clock from `at`."""
    conn.execute(
        "UPDATE rule_state SET due_at = %s WHERE state->>'inhibited_by' = %s AND subject LIKE 'device:%%'",
        (at, gateway_id),
    )


def list_alerts(conn: psycopg.Connection, *, open_only: bool = True, limit: int = 1000) -> list[Alert]:
    """Newest first."""
    where = "WHERE state <> 'resolved'" if open_only else ""
    with conn.cursor(row_factory=class_row(Alert)) as cur:
        return cur.execute(
            f"SELECT * FROM alerts {where} ORDER BY opened_at DESC, id DESC LIMIT %s", (limit,)
        ).fetchall()


def get_alert(conn: psycopg.Connection, alert_id: int, *, lock: bool = False) -> Alert | None:
    with conn.cursor(row_factory=class_row(Alert)) as cur:
        return cur.execute(
            "SELECT * FROM alerts WHERE id = %s" + (" FOR UPDATE" if lock else ""), (alert_id,)
        ).fetchone()


def active_silences(conn: psycopg.Connection, at: datetime) -> list[tuple[int, dict[str, Any]]]:
    """(id, matchers) of the silences in force at `at`."""
    return conn.execute(
        "SELECT id, matchers FROM silences WHERE starts_at <= %s AND ends_at > %s AND expired_at IS NULL ORDER BY id",
        (at, at),
    ).fetchall()


def add_silence(
    conn: psycopg.Connection, matchers: Mapping[str, str], starts_at: datetime, ends_at: datetime, by: str, comment: str
) -> int:
    row = conn.execute(
        "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment) VALUES (%s, %s, %s, %s, %s) "
        "RETURNING id",
        (Jsonb(dict(matchers)), starts_at, ends_at, by, comment),
    ).fetchone()
    assert row is not None
    return int(row[0])


def list_silences(conn: psycopg.Connection, *, active_at: datetime | None = None) -> list[tuple[Any, ...]]:
    """(id, matchers, starts_at, ends_at, created_by, comment, expired_at), newest first."""
    query = "SELECT id, matchers, starts_at, ends_at, created_by, comment, expired_at FROM silences"
    params: tuple[Any, ...] = ()
    if active_at is not None:
        query += " WHERE ends_at > %s AND expired_at IS NULL"
        params = (active_at,)
    return conn.execute(query + " ORDER BY id DESC", params).fetchall()


def expire_silence(conn: psycopg.Connection, silence_id: int, at: datetime) -> bool:
    cur = conn.execute(
        "UPDATE silences SET expired_at = %s WHERE id = %s AND expired_at IS NULL AND ends_at > %s",
        (at, silence_id, at),
    )
    return cur.rowcount == 1


__all__ = [
    "OPEN_STATES",
    "active_silences",
    "add_silence",
    "alert_log",
    "all_states",
    "devices_by_ref",
    "due_states",
    "expire_silence",
    "get_alert",
    "insert_alert",
    "list_alerts",
    "list_silences",
    "load_states",
    "log",
    "next_due",
    "open_alerts",
    "release_inhibited",
    "save_states",
    "upcoming_due",
    "update_alert",
]
