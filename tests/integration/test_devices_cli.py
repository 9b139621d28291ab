"""`lorawatch devices import|export` and `simulate --devices-out` against a real database."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from ingest.pipeline import Processor
from lorawatch.cli import main
from simulators import capture, demo_town
from store import queries
from store.records import Device, UplinkRecord
from store.registry_csv import EXPORT_HEADER
from store.writer import IngestWriter, device_models


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LORAWATCH_DATABASE_URL", db_url)
    monkeypatch.delenv("LORAWATCH_MQTT_URL", raising=False)
    return db_url


def devices(db_url: str) -> list[Device]:
    with psycopg.connect(db_url) as conn:
        return queries.devices(conn)


def test_import_reports_every_error_as_file_line_column_and_applies_nothing(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text(
        "device_id,kind,latitude,sensor_height_mm,outlet_invert_mm,colour\n"
        "gully-1,gully,51.4,1200,400,\n"
        "gully-2,gully,-91,1200,400,\n"
        "gully-3,gully,51.4,800,800,\n"
    )
    assert main(["devices", "import", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{path}:1: column colour: unknown column (the columns are {', '.join(EXPORT_HEADER)})",
        f"{path}:3: column latitude: -91: a latitude is between -90 and 90",
        f"{path}:4: column outlet_invert_mm: outlet_invert_mm 800 must be below sensor_height_mm 800",
        f"{path}: 3 errors: nothing applied",
    ]
    assert devices(env) == []


def test_import_summary_then_export_round_trip(env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fleet.csv"
    body = (
        "device_id,kind,name,care_room,care_group\n"
        "care-1,care,Flat 1 bedroom,bedroom,Flat 1\n"
        "gully-1,gully,Mill Lane,,\n"
    )
    path.write_bytes(b"\xef\xbb\xbf" + body.replace("\n", "\r\n").encode())  # as a spreadsheet saves it
    assert main(["devices", "import", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: created 2, updated 0, unchanged 0"
    assert main(["devices", "export"]) == 0
    exported = capsys.readouterr().out
    rows = list(csv.DictReader(exported.splitlines()))
    assert [(r["device_id"], r["application_id"], r["kind"], r["care_room"]) for r in rows] == [
        ("care-1", "", "care", "bedroom"),
        ("gully-1", "", "gully", ""),
    ]
    out = tmp_path / "export.csv"
    assert main(["devices", "export", "--out", str(out)]) == 0
    assert out.read_text() == exported and "wrote 2 devices" in capsys.readouterr().err
    assert main(["devices", "import", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"{out}: created 0, updated 0, unchanged 2"


def test_dry_run_and_a_missing_file(env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text("device_id,kind\ng-1,gully\n")
    assert main(["devices", "import", "--dry-run", str(path)]) == 0
    assert "dry run, nothing applied: would have created 1" in capsys.readouterr().out
    assert devices(env) == []
    assert main(["devices", "import", str(tmp_path / "nope.csv")]) == 1
    assert "No such file" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["tts", "chirpstack"])
def test_a_simulated_fleet_imports_and_its_uplinks_land_on_those_devices(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    feeds = []
    for scenario, fleet in (("gully-mixed", "4"), ("care-mixed", "2")):
        feed, registry = tmp_path / f"{scenario}.jsonl", tmp_path / f"{scenario}.csv"
        args = ["simulate", scenario, "--fleet", fleet, "--duration", "3h", "--format", fmt, "--no-progress"]
        assert main([*args, "--out", str(feed), "--devices-out", str(registry)]) == 0
        assert f"wrote {4 if scenario.startswith('gully') else 10} devices to {registry}" in capsys.readouterr().err
        assert main(["devices", "import", str(registry)]) == 0  # a fresh database
        assert capsys.readouterr().out.strip().endswith("updated 0, unchanged 0")
        feeds.append(feed)
    registered = {(d.application_id, d.device_id): d for d in devices(env)}
    assert len(registered) == 14
    gullies = [d for d in registered.values() if d.kind == "gully"]
    care = [d for d in registered.values() if d.kind == "care"]
    assert len(gullies) == 4 and len(care) == 10
    for g in gullies:
        assert g.sensor_height_mm and g.outlet_invert_mm is not None and 0 < g.outlet_invert_mm < g.sensor_height_mm
        assert g.latitude and g.longitude and g.brand_id and g.model_id and g.care_room is None
    assert {d.care_room for d in care} == {"bedroom", "bathroom", "hall", "kitchen", "living"}
    assert len({d.care_group for d in care}) == 2 and all(d.sensor_height_mm is None for d in care)

    # the devices are named as the network server names them: ingest finds them, and makes no new ones
    with psycopg.connect(env) as conn:
        models = device_models(conn)  # the decoder for each device: the registry's brand and model
        processor = Processor(lambda app, device: models.get((app, device)))
        now = datetime.now(UTC)
        for feed in feeds:
            raw = [
                (m.topic, m.payload.encode() if isinstance(m.payload, str) else m.payload) for m in capture.read(feed)
            ]
            outcomes = [processor.process(topic, payload, now) for topic, payload in raw]
            records = [r for r in outcomes if isinstance(r, UplinkRecord)]
            assert len(records) == len(outcomes)  # nothing dead-lettered, nothing skipped
            result = IngestWriter(conn).write(records)
            assert result.stored > 0 and result.readings > 0
    after = {(d.application_id, d.device_id): d for d in devices(env)}
    assert after.keys() == registered.keys()
    assert all(after[k].kind == registered[k].kind and after[k].last_seen is not None for k in after)
    assert all(after[k].brand_id == registered[k].brand_id for k in after)


def test_the_demo_registers_its_simulated_fleets(env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lorawatch.cmd_demo import SIMULATIONS, _register_fleets

    _register_fleets(env, tmp_path)
    first = capsys.readouterr().out
    assert first.count("device registry from") == len(SIMULATIONS) and "not applied" not in first
    kinds = [d.kind for d in devices(env)]
    assert kinds.count("gully") == demo_town.GULLIES and kinds.count("care") == demo_town.FLATS * 5
    _register_fleets(env, tmp_path)  # a second demo run on the same database changes nothing
    assert capsys.readouterr().out.count("created 0, updated 0, unchanged") == len(SIMULATIONS)


def test_an_unmigrated_database_is_one_clear_line(
    migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS lorawatch_unmigrated")
        conn.execute("CREATE DATABASE lorawatch_unmigrated")
    try:
        monkeypatch.setenv("LORAWATCH_DATABASE_URL", make_conninfo(migrated_url, dbname="lorawatch_unmigrated"))
        assert main(["devices", "export"]) == 2
        assert "run `lorawatch db migrate` first" in capsys.readouterr().err
    finally:
        with psycopg.connect(migrated_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE lorawatch_unmigrated")
