"""One gully's chart data: its distance and battery per bucket (min/max/mean), and what its silt and
blockage detectors have learned (for the cleanse priority).

Narrower than store/reading_series.py (which serves the API every quantity): a gully chart needs two
columns, so a year of 15-minute readings (35,000 rows) is one index range scan aggregating two columns,
well inside the one-year chart's 150 ms. Runs under the request's role, like every page query.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from store.reading_series import Bucket, Stats

_BUCKETS = """
SELECT time_bucket(%(width)s::interval, time) AS bucket, count(*)::int,
       min(distance_mm), max(distance_mm), avg(distance_mm), count(distance_mm)::int,
       min(battery_v)::float8, max(battery_v)::float8, avg(battery_v)::float8, count(battery_v)::int
FROM readings WHERE device_ref = %(ref)s AND time >= %(start)s AND time < %(end)s
GROUP BY 1 ORDER BY 1"""
_QUANTITIES = ("distance_mm", "battery_v")


def buckets(conn: psycopg.Connection, ref: int, width: timedelta, start: datetime, end: datetime) -> list[Bucket]:
    """`reading_series.buckets` for the two quantities a gully chart draws (distance and battery): the
    same Bucket records, buckets aligned as `reading_series.floor`, empty buckets left out."""
    out = []
    for row in conn.execute(_BUCKETS, {"width": width, "ref": ref, "start": start, "end": end}).fetchall():
        quantities = {name: Stats(*row[2 + 4 * i : 6 + 4 * i]) for i, name in enumerate(_QUANTITIES) if row[5 + 4 * i]}
        out.append(Bucket(row[0], row[1], quantities))
    return out


def rule_states(conn: psycopg.Connection, ref: int) -> dict[str, dict[str, Any]]:
    """What each rule remembers about this gully, by rule name (empty for any other device, or one the
    role cannot see): through the narrow function of migration 0011, rule_state itself being closed."""
    rows = conn.execute("SELECT rule, state FROM public.api_gully_rule_states(%s)", (ref,)).fetchall()
    return {str(rule): state for rule, state in rows}
