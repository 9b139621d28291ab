"""TimescaleDB licence detection and the features that depend on it.

The Apache edition (what scripts/setup.sh builds from Debian's source) has hypertables, `time_bucket`
and `drop_chunks`; the Timescale-licensed edition (e.g. the timescale/timescaledb docker image) adds
compression, continuous aggregates and background-job policies. We read `SHOW timescaledb.license` and
use the licensed features only where present. The fallback on the Apache edition is documented in
docs/storage.md: chunks stay uncompressed (the wide `readings` table keeps a gully-year compact), and
retention runs `drop_chunks` from lorawatch's own scheduler instead of `add_retention_policy`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

log = logging.getLogger(__name__)

#: Chunks older than this are compressed where compression is available.
COMPRESS_AFTER = "30 days"


@dataclass(frozen=True, slots=True)
class Features:
    version: str
    license: str  # 'apache' or 'timescale'

    @property
    def licensed(self) -> bool:
        """True when compression, continuous aggregates and job policies are available."""
        return self.license == "timescale"


def detect_features(conn: psycopg.Connection) -> Features:
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    if row is None:
        msg = "the timescaledb extension is not installed in this database (run `lorawatch db migrate`)"
        raise RuntimeError(msg)
    lic = conn.execute("SHOW timescaledb.license").fetchone()
    return Features(version=str(row[0]), license=str(lic[0]) if lic else "apache")


def apply_features(conn: psycopg.Connection, features: Features) -> None:
    """Turn on compression policies where licensed (uplinks only); idempotent."""
    if not features.licensed:
        log.info("timescaledb_apache_edition", extra={"version": features.version})
        return
    # Only uplinks: TimescaleDB refuses compression on a table with row security (readings and events
    # have it, migration 0007; timescale/timescaledb#6827), and no API role reads uplinks.
    for table, segment in (("uplinks", "device_id"),):
        conn.execute(f"ALTER TABLE {table} SET (timescaledb.compress, timescaledb.compress_segmentby = '{segment}')")
        conn.execute("SELECT add_compression_policy(%s, %s::interval, if_not_exists => true)", (table, COMPRESS_AFTER))
