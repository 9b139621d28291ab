"""SQL of what the API shows of alerts: pages of them, one with its log. Read under the request's
role, so row-level security decides what exists (an alert the role cannot see is simply not found).

Each alert comes with `care`: whether it is care data (opened as a care alert, of a care category, or
of a sealed device), which the API audits every view of. Computed in the same query, under the same
policies, so the answer costs no second round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from store.records import Alert

#: Categories whose alerts are about people (as alerts.notifiers' CARE_CATEGORIES).
CARE_CATEGORIES = ("fall", "inactivity", "bathroom_dwell", "night_activity")
#: `state` filter values besides the states themselves: `open` is every state but resolved.
OPEN = "open"

_CARE = sql.SQL(
    "(a.kind = 'care' OR a.category = ANY({cats}) "
    "OR EXISTS (SELECT 1 FROM devices d WHERE d.id = a.device_ref AND d.sealed)) AS care"
).format(cats=sql.Literal(list(CARE_CATEGORIES)))


@dataclass(frozen=True, slots=True)
class ShownAlert:
    """An alert as the API shows it, and whether it is care data."""

    alert: Alert
    care: bool


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One alert_log row: who did what to an alert, when (wall clock) and for which data time."""

    id: int
    at: datetime
    data_time: datetime | None
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    note: str | None


def _shown(cursor: psycopg.Cursor[Any]) -> Any:
    names = [c.name for c in cursor.description or ()]

    def make(values: Sequence[Any]) -> ShownAlert:
        fields = dict(zip(names, values, strict=True))
        care = bool(fields.pop("care"))
        return ShownAlert(Alert(**fields), care)

    return make


def alerts(
    conn: psycopg.Connection,
    *,
    state: str | None = None,
    category: str | None = None,
    device_id: str | None = None,
    since: datetime | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int = 100,
) -> list[ShownAlert]:
    """Alerts newest first (by `opened_at`, then id), at most `limit`: of one state (or `open`), one
    category, one device, opened at or after `since`, and after the keyset cursor `after` (the
    `(opened_at, id)` of the previous page's last alert)."""
    where: list[sql.Composable] = []
    params: list[Any] = []
    if state == OPEN:
        where.append(sql.SQL("a.state <> 'resolved'"))
    elif state is not None:
        where.append(sql.SQL("a.state = %s"))
        params.append(state)
    if category is not None:
        where.append(sql.SQL("a.category = %s"))
        params.append(category)
    if device_id is not None:
        where.append(sql.SQL("a.device_id = %s"))
        params.append(device_id)
    if since is not None:
        where.append(sql.SQL("a.opened_at >= %s"))
        params.append(since)
    if after is not None:
        where.append(sql.SQL("(a.opened_at, a.id) < (%s, %s)"))
        params.extend(after)
    query = sql.SQL("SELECT a.*, {care} FROM alerts a{where} ORDER BY a.opened_at DESC, a.id DESC LIMIT %s").format(
        care=_CARE, where=sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL("")
    )
    with conn.cursor(row_factory=_shown) as cur:
        return list(cur.execute(query, [*params, limit]).fetchall())


def alert(conn: psycopg.Connection, alert_id: int) -> ShownAlert | None:
    """One alert, or None when there is none the role can see."""
    query = sql.SQL("SELECT a.*, {care} FROM alerts a WHERE a.id = %s").format(care=_CARE)
    with conn.cursor(row_factory=_shown) as cur:
        row: ShownAlert | None = cur.execute(query, (alert_id,)).fetchone()
        return row


def log(conn: psycopg.Connection, alert_id: int) -> list[LogEntry]:
    """An alert's log, oldest first."""
    with conn.cursor() as cur:
        rows = cur.execute(
            "SELECT id, at, data_time, actor, action, from_state, to_state, note FROM alert_log "
            "WHERE alert_id = %s ORDER BY id",
            (alert_id,),
        ).fetchall()
    return [LogEntry(*r) for r in rows]


__all__ = ["CARE_CATEGORIES", "OPEN", "LogEntry", "ShownAlert", "alert", "alerts", "log"]
