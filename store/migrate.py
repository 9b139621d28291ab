"""Versioned SQL migrations: `store/migrations/NNNN_name.sql`, applied in order, each recorded.

Applying twice is a no-op. A recorded migration whose file has since changed is refused (checksum), so a
database never silently differs from the code. Concurrent migrators serialise on an advisory lock.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

import psycopg

from store.access import seal_chunks
from store.features import Features, apply_features, detect_features

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 0x6C6F7261  # "lora": the advisory lock key for migrations


class MigrationError(RuntimeError):
    """The database's migration history disagrees with the code, or a migration failed."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    version: int
    name: str
    applied_at: datetime | None


def available() -> list[Migration]:
    """The migrations shipped with this version of lorawatch, in order."""
    found = []
    for entry in resources.files("store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        msg = f"two migration files share a version number: {versions}"
        raise MigrationError(msg)
    return found


_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""


def _applied(conn: psycopg.Connection) -> dict[int, tuple[str, str, datetime]]:
    rows = conn.execute("SELECT version, name, checksum, applied_at FROM schema_migrations").fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def migrate(conninfo: str) -> list[Migration]:
    """Apply every pending migration, then the licence-dependent features, and seal the hypertables'
    chunks from the API roles (store.access); return what was applied."""
    done: list[Migration] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(_LEDGER)
            applied = _applied(conn)
            for mig in available():
                if mig.version in applied:
                    name, checksum, _ = applied[mig.version]
                    if checksum != mig.checksum:
                        msg = (
                            f"migration {mig.version:04d}_{name} was applied from a different file than the "
                            "one shipped now; restore the original file and add a new migration instead"
                        )
                        raise MigrationError(msg)
                    continue
                log.info("migration_apply", extra={"version": mig.version, "migration": mig.name})
                try:
                    with conn.transaction():
                        conn.execute(mig.sql.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                            (mig.version, mig.name, mig.checksum),
                        )
                except psycopg.Error as exc:
                    msg = f"migration {mig.version:04d}_{mig.name} failed: {exc}"
                    raise MigrationError(msg) from exc
                done.append(mig)
            apply_features(conn, detect_features(conn))
            # A GRANT on a hypertable (in a migration or by hand) copies to its chunks: take it back.
            seal_chunks(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return done


def status(conninfo: str) -> list[MigrationStatus]:
    """Every shipped migration and when (if ever) it was applied."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        applied = _applied(conn) if exists and exists[0] else {}
    return [MigrationStatus(m.version, m.name, applied.get(m.version, (None, None, None))[2]) for m in available()]


def features(conninfo: str) -> Features:
    """What the connected TimescaleDB offers (see `store.features`)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return detect_features(conn)
