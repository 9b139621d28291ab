"""SQL of dead letters as the API shows them (admin only: migration 0009 grants SELECT on the table to
lorawatch_admin and nobody else). A page lists them without their bytes, which can be large and are
fetched one message at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from store.records import DeadLetterRow


@dataclass(frozen=True, slots=True)
class DeadLetterSummary:
    """A dead letter without its raw bytes (`size`: how many there are)."""

    id: int
    first_time: datetime
    last_time: datetime
    repeats: int
    stage: str
    reason: str
    field: str | None
    error_class: str | None
    topic: str | None
    device_id: str | None
    size: int


_SUMMARY = sql.SQL(
    "id, time AS first_time, last_time, repeats, stage, reason, field, error_class, topic, device_id, "
    "octet_length(raw) AS size"
)


def dead_letters(
    conn: psycopg.Connection,
    *,
    stage: str | None = None,
    device_id: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[DeadLetterSummary]:
    """Newest first (by id: the order they were first seen), at most `limit`: of one stage, one device,
    last seen at or after `since`, after the previous page's last id."""
    where: list[sql.Composable] = []
    params: list[Any] = []
    for clause, value in (("stage = %s", stage), ("device_id = %s", device_id), ("last_time >= %s", since),
                          ("id < %s", before_id)):  # fmt: skip
        if value is not None:
            where.append(sql.SQL(clause))  # constant SQL (the tuple above), never user text
            params.append(value)
    query = sql.SQL("SELECT {cols} FROM dead_letters{where} ORDER BY id DESC LIMIT %s").format(
        cols=_SUMMARY, where=sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL("")
    )
    with conn.cursor(row_factory=class_row(DeadLetterSummary)) as cur:
        return cur.execute(query, [*params, limit]).fetchall()


def dead_letter(conn: psycopg.Connection, dead_id: int) -> DeadLetterRow | None:
    """One dead letter with its raw bytes, or None."""
    with conn.cursor(row_factory=class_row(DeadLetterRow)) as cur:
        return cur.execute(
            "SELECT id, time AS first_time, last_time, repeats, stage, reason, field, error_class, topic, device_id, "
            "raw FROM dead_letters WHERE id = %s",
            (dead_id,),
        ).fetchone()


__all__ = ["DeadLetterSummary", "dead_letter", "dead_letters"]
