"""Counts for `lorawatch status`: what is in the database right now, and the ingest accounting.

Hypertable sizes come from the `counters` the writer moves in each batch's transaction, never from
count(*) over a hypertable (which reads every chunk). `messages` balances: every message ingest
received is exactly one of stored, duplicate, dead-lettered (whole message, any stage but `range`)
or skipped (a well-formed non-uplink: join, downlink event, location, service data), so

    messages.total = stored + duplicates + dead_lettered + skipped

equals what was published to the ingester (plus the broker's redeliveries, which count as duplicates).
`dead_letters.range` counts values refused inside stored uplinks; it is not part of that sum.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg


def counts(conninfo: str) -> dict[str, Any]:
    """Row counts by kind, dead letters by stage, skipped by kind, the message balance, open alerts."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        counters = {name: int(value) for name, value in conn.execute("SELECT name, value FROM counters")}
        row = conn.execute(
            "SELECT (SELECT count(*) FROM devices), (SELECT count(*) FROM gateways), "
            "(SELECT count(*) FROM (SELECT device_id FROM devices GROUP BY device_id HAVING count(*) > 1) s), "
            "(SELECT count(*) FROM dead_letters), (SELECT coalesce(max(id), 0) FROM changes)"
        ).fetchone()
        devices, gateways, shared, dead_rows, newest_change = row if row else (0, 0, 0, 0, 0)
        has_alerts = conn.execute("SELECT to_regclass('alerts') IS NOT NULL").fetchone()
        open_alerts = 0
        by_category: dict[str, int] = {}
        if has_alerts and has_alerts[0]:
            rows = conn.execute(
                "SELECT category, count(*) FROM alerts WHERE state <> 'resolved' GROUP BY category ORDER BY category"
            ).fetchall()
            by_category = {str(category): int(n) for category, n in rows}
            open_alerts = sum(by_category.values())
    dead = {name.removeprefix("dead:"): n for name, n in sorted(counters.items()) if name.startswith("dead:") and n}
    skipped = {
        name.removeprefix("skipped:"): n for name, n in sorted(counters.items()) if name.startswith("skipped:") and n
    }
    stored, duplicates = counters.get("uplinks", 0), counters.get("duplicates", 0)
    dead_lettered = sum(n for stage, n in dead.items() if stage != "range")
    skipped_total = sum(skipped.values())
    return {
        "devices": int(devices),
        "devices_sharing_a_name": int(shared),
        "uplinks": stored,
        "readings": counters.get("readings", 0),
        "events": counters.get("events", 0),
        "gateways": int(gateways),
        "duplicates": duplicates,
        "reading_duplicates": counters.get("reading_duplicates", 0),
        "dead_letters": dead,
        "dead_letter_rows": int(dead_rows),
        "skipped": skipped,
        "messages": {
            "stored": stored,
            "duplicates": duplicates,
            "dead_lettered": dead_lettered,
            "skipped": skipped_total,
            "total": stored + duplicates + dead_lettered + skipped_total,
        },
        "newest_change": int(newest_change),
        "open_alerts": open_alerts,
        "open_alerts_by_category": by_category,
    }


def newest_seen(conn: psycopg.Connection) -> datetime | None:
    """The newest uplink time of the devices the connection's role can see (the demo's data clock)."""
    row = conn.execute("SELECT max(last_seen) FROM devices").fetchone()
    newest = row[0] if row else None
    return newest if isinstance(newest, datetime) else None
