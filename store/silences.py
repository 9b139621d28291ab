"""SQL of silences as the API shows them (the engine's and the CLI's are in store.alerts). Run under
the request's role: migration 0009's policies decide which silences a role sees, makes and expires
(each role only those pinned to its own fleet; see alerts/silences.py for why)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

_COLUMNS = sql.SQL("id, matchers, starts_at, ends_at, created_by, comment, expired_at, created_at")


@dataclass(frozen=True, slots=True)
class Silence:
    """One silences row (migration 0004)."""

    id: int
    matchers: dict[str, Any]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    expired_at: datetime | None
    created_at: datetime

    def active(self, at: datetime) -> bool:
        """In force at `at`: started, not ended, not expired by hand."""
        return self.expired_at is None and self.starts_at <= at < self.ends_at


def silences(
    conn: psycopg.Connection, *, active_at: datetime | None = None, before_id: int | None = None, limit: int = 100
) -> list[Silence]:
    """Newest first (by id), at most `limit`: with `active_at`, only those not ended or expired by then
    (and those yet to start); with `before_id`, those after the previous page's last."""
    where: list[sql.Composable] = []
    params: list[Any] = []
    if active_at is not None:
        where.append(sql.SQL("ends_at > %s AND expired_at IS NULL"))
        params.append(active_at)
    if before_id is not None:
        where.append(sql.SQL("id < %s"))
        params.append(before_id)
    query = sql.SQL("SELECT {cols} FROM silences{where} ORDER BY id DESC LIMIT %s").format(
        cols=_COLUMNS, where=sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL("")
    )
    with conn.cursor(row_factory=class_row(Silence)) as cur:
        return cur.execute(query, [*params, limit]).fetchall()


def silence(conn: psycopg.Connection, silence_id: int) -> Silence | None:
    """One silence, or None when there is none the role can see."""
    query = sql.SQL("SELECT {cols} FROM silences WHERE id = %s").format(cols=_COLUMNS)
    with conn.cursor(row_factory=class_row(Silence)) as cur:
        return cur.execute(query, (silence_id,)).fetchone()


__all__ = ["Silence", "silence", "silences"]
