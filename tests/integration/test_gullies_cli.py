"""`lorawatch gullies priority` on a real store: the silt and blockage evidence the engine learned,
read back through the CLI, highest first."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.engine import Engine
from alerts.rules import DEFAULT_RULES_FILE, load_rules
from lorawatch.cli import main
from store.records import DeviceSeen, GatewaySeen, ReadingRow, UplinkRecord, UplinkRow
from store.writer import IngestWriter
from tests.integration.alerts.test_engine import Clock
from tests.integration.store.records_factory import values

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def record(device: str, t: datetime, n: int, distance: float) -> UplinkRecord:
    key = f"tts:app/{device}:s:{n}"
    row = UplinkRow(t, key, "app", device, "tts", False, 2, n, b"\x00", "s", None, None, None, None, -80.0, 7.0, 1,
                    None, "lorawatch:x", None)  # fmt: skip
    gw = [GatewaySeen("gw:", "gw", None, False, -80.0, 7.0, None, None)]
    return UplinkRecord(row, DeviceSeen(device, "tts", t, "app"), [ReadingRow(t, values(distance_mm=distance))], [], gw)


def test_a_silting_gully_ranks_above_a_clean_one(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("LORAWATCH_DATABASE_URL", db_url)
    monkeypatch.delenv("LORAWATCH_RULES_FILE", raising=False)
    rng = random.Random(3)
    with psycopg.connect(db_url) as conn:
        for device, name in (("gully-clean", "Mill Ln"), ("gully-silt", "High St")):
            conn.execute(
                "INSERT INTO devices (application_id, device_id, kind, name, sensor_height_mm, outlet_invert_mm) "
                "VALUES ('app', %s, 'gully', %s, 1000, 400)",
                (device, name),
            )
        conn.commit()
        engine = Engine(load_rules(DEFAULT_RULES_FILE), Clock(T0), notify=False)
        records, n = [], 0
        for k in range(12 * 24 * 4):  # 12 days of 15-minute readings; one gully silts 8 mm a day
            t = T0 + timedelta(minutes=15 * k)
            days = k / 96
            for device, rise in (("gully-clean", 0.0), ("gully-silt", 8.0 * days)):
                n += 1
                records.append(record(device, t, n, 600.0 - rise + rng.gauss(0, 1)))
        for i in range(0, len(records), 500):
            IngestWriter(conn).write(records[i : i + 500])
            while engine.process(conn, 500):
                pass
    assert main(["gullies", "priority", "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert [p["device_id"] for p in ranked] == ["gully-silt", "gully-clean"]
    assert ranked[0]["silt_open"] is True and ranked[0]["silt_rise_mm"] > 40
    assert 6 <= ranked[0]["silt_mm_per_day"] <= 10
    assert ranked[1]["silt_open"] is False and ranked[1]["score"] < 10
    assert main(["gullies", "priority"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[1].split()[1] == "gully-silt" and "High St" in table
