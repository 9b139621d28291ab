"""Migrations on a real TimescaleDB: ordered, recorded, idempotent, and creating hypertables."""

from __future__ import annotations

import psycopg
import pytest

from lorawatch.services import Postgres
from store import migrate, status


@pytest.fixture
def blank_db(postgres: Postgres | None, request: pytest.FixtureRequest) -> str:
    """A brand-new empty database in the session cluster."""
    if postgres is None:
        pytest.skip("needs the private cluster")
    name = f"blank_{request.node.name[:30].lower()}".replace("[", "_").replace("]", "_").replace("-", "_")
    with psycopg.connect(postgres.admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres.admin_url(name)


def test_migrate_applies_everything_once(blank_db: str) -> None:
    first = migrate.migrate(blank_db)
    assert [m.version for m in first] == [m.version for m in migrate.available()]
    assert migrate.migrate(blank_db) == []  # second run: nothing to do
    rows = migrate.status(blank_db)
    assert rows and all(r.applied_at is not None for r in rows)


def test_status_reports_pending_before_migrate(blank_db: str) -> None:
    rows = migrate.status(blank_db)
    assert rows and all(r.applied_at is None for r in rows)


def test_hypertables_exist(migrated_url: str) -> None:
    with psycopg.connect(migrated_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")}
    assert {"uplinks", "readings", "events"} <= tables


def test_f_cnt_is_bigint(migrated_url: str) -> None:
    with psycopg.connect(migrated_url) as conn:
        row = conn.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'uplinks' AND column_name = 'f_cnt'"
        ).fetchone()
    assert row == ("bigint",)


def test_changed_migration_file_is_refused(blank_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    migrate.migrate(blank_db)
    original = migrate.available()
    tampered = [migrate.Migration(m.version, m.name, m.sql + "\n-- edited") for m in original]
    monkeypatch.setattr(migrate, "available", lambda: tampered)
    with pytest.raises(migrate.MigrationError, match="applied from a different file"):
        migrate.migrate(blank_db)


def test_features_read_the_license(migrated_url: str) -> None:
    feats = migrate.features(migrated_url)
    assert feats.license in {"apache", "timescale"}
    assert feats.licensed == (feats.license == "timescale")
    assert feats.version.count(".") >= 1


def test_status_counts_on_empty_db(db_url: str) -> None:
    data = status.counts(db_url)
    assert data == {
        "devices": 0,
        "devices_sharing_a_name": 0,
        "uplinks": 0,
        "readings": 0,
        "events": 0,
        "gateways": 0,
        "duplicates": 0,
        "reading_duplicates": 0,
        "dead_letters": {},
        "dead_letter_rows": 0,
        "skipped": {},
        "messages": {"stored": 0, "duplicates": 0, "dead_lettered": 0, "skipped": 0, "total": 0},
        "newest_change": 0,
        "open_alerts": 0,
        "open_alerts_by_category": {},
    }


def test_0002_upgrades_a_populated_0001_database(blank_db: str) -> None:
    """Data stored under the first schema survives the hardening migration, re-keyed and counted."""
    first = migrate.available()[0]
    with psycopg.connect(blank_db, autocommit=True) as conn:
        conn.execute(first.sql.encode())
        conn.execute(migrate._LEDGER)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
            (first.version, first.name, first.checksum),
        )
        conn.execute(
            "INSERT INTO devices (device_id, application_id, source) VALUES ('gully-1', 'app-a', 'tts');"
            "INSERT INTO uplinks (time, uplink_key, device_id, source) VALUES "
            "('2026-01-01T00:00:00Z', 'k1', 'gully-1', 'tts'), ('2026-01-01T00:00:00.15Z', 'k1', 'gully-1', 'tts'),"
            "('2026-01-01T00:15:00Z', 'k2', 'orphan', 'tts');"
            "INSERT INTO readings (time, device_id, distance_mm) VALUES ('2026-01-01T00:00:00Z', 'gully-1', 2000);"
            "INSERT INTO events (time, device_id, kind) VALUES ('2026-01-01T00:00:00Z', 'orphan', 'reset');"
            "INSERT INTO dead_letters (stage, reason, topic, raw) VALUES ('json', 'bad', 't', 'x'),"
            " ('json', 'bad', 't', 'x'), ('decode', 'short', 't', 'z')"
        )
    assert [m.version for m in migrate.migrate(blank_db)] == [m.version for m in migrate.available()[1:]]
    with psycopg.connect(blank_db) as conn:
        assert conn.execute("SELECT count(*) FROM uplink_keys").fetchone() == (2,)
        assert conn.execute(
            "SELECT d.device_id, d.application_id, r.distance_mm FROM readings r JOIN devices d ON d.id = r.device_ref"
        ).fetchall() == [("gully-1", "app-a", 2000.0)]
        assert conn.execute("SELECT d.device_id FROM events e JOIN devices d ON d.id = e.device_ref").fetchall() == [
            ("orphan",)
        ]
        assert conn.execute("SELECT application_id FROM uplinks WHERE uplink_key = 'k2'").fetchone() == ("",)
    data = status.counts(blank_db)
    assert data["dead_letters"] == {"decode": 1, "json": 2}
    assert data["dead_letter_rows"] == 2
    assert (data["uplinks"], data["readings"], data["events"]) == (3, 1, 1)
