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
        "uplinks": 0,
        "readings": 0,
        "events": 0,
        "gateways": 0,
        "duplicates": 0,
        "dead_letters": {},
        "open_alerts": 0,
    }


def test_status_counts_dead_letters_by_stage(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO dead_letters (stage, reason, raw) VALUES ('json', 'bad', 'x'), ('json', 'bad', 'y'),"
            " ('decode', 'short', 'z')"
        )
    assert status.counts(db_url)["dead_letters"] == {"decode": 1, "json": 2}
