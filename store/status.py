"""Counts for `lorawatch status`: what is in the database right now."""

from __future__ import annotations

from typing import Any

import psycopg

_COUNTS = {
    "devices": "SELECT count(*) FROM devices",
    "uplinks": "SELECT count(*) FROM uplinks",
    "readings": "SELECT count(*) FROM readings",
    "events": "SELECT count(*) FROM events",
    "gateways": "SELECT count(*) FROM gateways",
    "duplicates": "SELECT coalesce(sum(value), 0) FROM counters WHERE name = 'duplicates'",
}


def counts(conninfo: str) -> dict[str, Any]:
    """Row counts by kind, dead letters by stage, and open alerts (0 until the alerts schema exists)."""
    out: dict[str, Any] = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for key, sql in _COUNTS.items():
            row = conn.execute(sql).fetchone()
            out[key] = int(row[0]) if row else 0
        out["dead_letters"] = {
            stage: int(n)
            for stage, n in conn.execute("SELECT stage, count(*) FROM dead_letters GROUP BY stage ORDER BY stage")
        }
        has_alerts = conn.execute("SELECT to_regclass('alerts') IS NOT NULL").fetchone()
        open_alerts = 0
        if has_alerts and has_alerts[0]:
            row = conn.execute("SELECT count(*) FROM alerts WHERE state <> 'resolved'").fetchone()
            open_alerts = int(row[0]) if row else 0
        out["open_alerts"] = open_alerts
    return out
