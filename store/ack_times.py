"""Time to acknowledge: the inbox's panel against the UK careline standard (98.5 % of calls answered
within 60 s), and the open alerts still waiting for a person.

Read under the request's role, so row-level security decides which alerts count: a highways request
counts none of the care alerts, a care request none of the gullies'.

How long an alert waited is measured on wall-clock times only: from when it began calling people to
`acknowledged_at` (set by the API and the CLI from the wall clock). `opened_at` and `firing_at` are data
times (the reading's), which in a replay or the demo's sped-up feed are hours away from the wall clock,
so they never enter a wait. The call begins at the wall time the alert went `firing`, which its trail
(`alert_log.at`, wall clock) records; an alert that opened firing (every fall does) began at
`created_at`, and so does one whose trail says nothing (rows made by hand).

Which alerts are calls: those that fired or that someone acknowledged, opened (`created_at`) since
the given time. Left out: alerts that only ever were pending (they asked nobody), `late` ones (opened
from history already over, never notified) and, by default, simulated ones. "Simulated" is TTS's
*Simulate uplink* (a person testing a device from the console), not the simulators: the demo's feeds
are ordinary uplinks, so its falls are counted and the demo's panel is not empty.

The percentage is of the calls already decided: acknowledged ones, and unacknowledged ones that have
waited longer than the target (still open, or resolved without anyone acknowledging them, which ended
their wait at the resolution). One unacknowledged for less than the target is not yet either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from store.care_views import ALERT_FLAT

#: The UK careline standard (TSA): 98.5 % of calls answered within 60 s.
TARGET_S = 60.0
STANDARD_PCT = 98.5

#: The wall time an alert `a` began calling people (see the module docstring).
_CALLED_AT = """coalesce(
    (SELECT min(l.at) FROM alert_log l WHERE l.alert_id = a.id AND l.to_state = 'firing'), a.created_at)"""


@dataclass(frozen=True, slots=True)
class AckStats:
    """Calls opened since a time: `count` in all, `acknowledged`, `within_target` (acknowledged within
    `target_s`, inclusive), `missed` (acknowledged later, or unacknowledged past the target), `pct`
    (within_target of the decided calls, 0-100; None when none is decided yet), the median and 95th
    percentile of the acknowledged waits (None without any), and those waits, oldest call first."""

    count: int
    acknowledged: int
    within_target: int
    missed: int
    pct: float | None
    median_s: float | None
    p95_s: float | None
    waits_s: tuple[float, ...]
    target_s: float

    @property
    def meets_standard(self) -> bool | None:
        """The UK careline standard met (None: nothing decided yet)."""
        return None if self.pct is None else self.pct >= STANDARD_PCT


@dataclass(frozen=True, slots=True)
class Call:
    """One call's waits in seconds: `ack_wait_s` until acknowledged (None: not acknowledged), and
    `unacked_wait_s` while it was not (until now, or until it was resolved without acknowledgement)."""

    ack_wait_s: float | None
    unacked_wait_s: float


@dataclass(frozen=True, slots=True)
class Waiting:
    """An open alert nobody has acknowledged. `waiting_since`: the wall time it began calling people
    (`created_at` for a pending one); `care_room`/`care_group` for a care device's alert."""

    alert_id: int
    category: str
    severity: str
    state: str
    device_id: str | None
    care_room: str | None
    care_group: str | None
    created_at: datetime
    waiting_since: datetime
    escalation_level: int
    simulated: bool


_CALLS = f"""
SELECT CASE WHEN a.acknowledged_at IS NOT NULL  -- greatest() skips NULLs: never 0 for "not acknowledged"
            THEN extract(epoch FROM greatest(a.acknowledged_at - c.at, interval '0'))::float8 END AS ack_wait_s,
       extract(epoch FROM greatest(coalesce(
           a.acknowledged_at,
           CASE WHEN a.state = 'resolved' THEN coalesce(
               (SELECT min(l.at) FROM alert_log l WHERE l.alert_id = a.id AND l.to_state = 'resolved'),
               a.updated_at) END,
           coalesce(%(now)s::timestamptz, statement_timestamp())) - c.at, interval '0'))::float8 AS unacked_wait_s
FROM alerts a CROSS JOIN LATERAL (SELECT {_CALLED_AT} AS at) c
WHERE a.created_at >= %(since)s AND NOT a.late AND (a.firing_at IS NOT NULL OR a.acknowledged_at IS NOT NULL)
  AND (%(categories)s::text[] IS NULL OR a.category = ANY(%(categories)s::text[]))
  AND (%(simulated)s OR NOT a.simulated)
ORDER BY a.created_at, a.id"""


def ack_stats(
    conn: psycopg.Connection,
    since: datetime,
    categories: Sequence[str] | None = ("fall",),
    target_s: float = TARGET_S,
    *,
    include_simulated: bool = False,
    now: datetime | None = None,
) -> AckStats:
    """Time to acknowledge the calls of `categories` (None: every category) opened since `since`
    (wall clock), as the role sees them. `now` (default: the database's clock) ends the wait of the
    calls still unacknowledged."""
    params: dict[str, Any] = {
        "since": since,
        "categories": list(categories) if categories is not None else None,
        "simulated": include_simulated,
        "now": now,
    }
    with conn.cursor(row_factory=class_row(Call)) as cur:
        calls = cur.execute(_CALLS, params).fetchall()
    return summarise(calls, target_s)


def summarise(calls: Sequence[Call], target_s: float = TARGET_S) -> AckStats:
    """The panel's figures from the calls' waits (pure: the SQL only measures)."""
    waits = tuple(c.ack_wait_s for c in calls if c.ack_wait_s is not None)
    within = sum(1 for w in waits if w <= target_s)
    overdue = sum(1 for c in calls if c.ack_wait_s is None and c.unacked_wait_s > target_s)
    decided = len(waits) + overdue
    ordered = sorted(waits)
    return AckStats(
        count=len(calls),
        acknowledged=len(waits),
        within_target=within,
        missed=decided - within,
        pct=100.0 * within / decided if decided else None,
        median_s=percentile(ordered, 0.5),
        p95_s=percentile(ordered, 0.95),
        waits_s=waits,
        target_s=target_s,
    )


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The `q` quantile of sorted values, interpolated linearly between neighbours (PostgreSQL's
    `percentile_cont`); None for no values."""
    if not ordered:
        return None
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


_WAITING = f"""
SELECT a.id AS alert_id, a.category, a.severity, a.state, a.device_id, d.care_room, {ALERT_FLAT} AS care_group,
       a.created_at, CASE WHEN a.state = 'firing' THEN {_CALLED_AT} ELSE a.created_at END AS waiting_since,
       a.escalation_level, a.simulated
FROM alerts a LEFT JOIN devices d ON d.id = a.device_ref AND d.kind = 'care'
WHERE a.state IN ('pending', 'firing') AND a.acknowledged_at IS NULL
  AND (%(categories)s::text[] IS NULL OR a.category = ANY(%(categories)s::text[]))
  AND (%(simulated)s OR NOT a.simulated)
ORDER BY waiting_since, a.id"""


def waiting(
    conn: psycopg.Connection, categories: Sequence[str] | None = None, *, include_simulated: bool = True
) -> list[Waiting]:
    """Open alerts nobody has acknowledged, the longest waiting first: of `categories` (None: all),
    as the role sees them. Simulated ones are in by default (flagged): they are open until closed."""
    params = {"categories": list(categories) if categories is not None else None, "simulated": include_simulated}
    with conn.cursor(row_factory=class_row(Waiting)) as cur:
        return cur.execute(_WAITING, params).fetchall()


__all__ = ["STANDARD_PCT", "TARGET_S", "AckStats", "Call", "Waiting", "ack_stats", "percentile", "summarise", "waiting"]
