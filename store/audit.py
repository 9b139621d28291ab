"""SQL of the append-only audit log (migration 0007): one row per login, logout, token or user change
and, with the data routes, per view of care data and per action on an alert.

Rows are only ever inserted: the API roles have no UPDATE, DELETE or TRUNCATE grant, and triggers
refuse those to the owner too. `at` and `id` come from the database, never from the caller, so an
entry cannot be back-dated. Reading is lorawatch_admin's alone (and the owner's, for the CLI).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from store.records import AuditEntry

_COLUMNS = sql.SQL("id, at, actor, actor_role, action, target, detail, host(ip) AS ip")


def record(
    conn: psycopg.Connection,
    *,
    actor: str,
    action: str,
    actor_role: str | None = None,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    """Append one entry in the caller's transaction (no RETURNING: the API roles cannot read it back).
    `detail` must never hold a secret: callers pass names, ids and reasons only."""
    conn.execute(
        "INSERT INTO audit_log (actor, actor_role, action, target, detail, ip) VALUES (%s, %s, %s, %s, %s, %s)",
        (actor[:200], actor_role, action, target, Jsonb(dict(detail or {})), ip),
    )


def entries(
    conn: psycopg.Connection,
    *,
    before_id: int | None = None,
    since: datetime | None = None,
    action: str | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Entries newest first, at most `limit`: those with an id below `before_id` (the keyset cursor of
    the next page), at or after `since`, of one action or one actor. Only the filters given are in
    the SQL, so each shape of query keeps its own plan on the primary key."""
    where: list[sql.Composable] = []
    params: list[Any] = []
    if before_id is not None:
        where.append(sql.SQL("id < %s"))
        params.append(before_id)
    if since is not None:
        where.append(sql.SQL("at >= %s"))
        params.append(since)
    if action is not None:
        where.append(sql.SQL("action = %s"))
        params.append(action)
    if actor is not None:
        where.append(sql.SQL("actor = %s"))
        params.append(actor)
    query = sql.SQL("SELECT {cols} FROM audit_log{where} ORDER BY id DESC LIMIT %s").format(
        cols=_COLUMNS,
        where=sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
    )
    with conn.cursor(row_factory=class_row(AuditEntry)) as cur:
        return cur.execute(query, [*params, limit]).fetchall()


__all__ = ["entries", "record"]
