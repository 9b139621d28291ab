"""`lorawatch score`: a simulated capture replayed through ingest and the alert rules in the data's own
time; the falls its labels hold are alerted at the uplink that carries them, once each."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lorawatch.cli import main
from simulators import capture as capture_file

pytestmark = pytest.mark.slow


def test_score_alerts_each_labelled_fall_once_at_its_uplink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture, fleet, alerts_out = tmp_path / "falls.jsonl", tmp_path / "fleet.csv", tmp_path / "alerts.jsonl"
    simulate = ["simulate", "care-falls", "--fleet", "2", "--duration", "2d", "--seed", "1", "--fast"]
    assert main([*simulate, "--out", str(capture), "--devices-out", str(fleet), "--no-progress"]) == 0
    labels = [json.loads(line) for line in Path(f"{capture}.labels.jsonl").read_text().splitlines()]
    falls = [label for label in labels if label["label"] == "fall"]
    assert len(falls) == 2
    capsys.readouterr()
    code = main(["score", str(capture), "--devices", str(fleet), "--alerts-out", str(alerts_out), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "scored" in out and "fall" in out
    alerts = [json.loads(line) for line in alerts_out.read_text().splitlines()]
    assert {"category", "rule", "severity", "device_id", "gateway_id", "opened_at", "resolved_at"} <= set(alerts[0])
    fall_alerts = [a for a in alerts if a["category"] == "fall"]
    assert len(fall_alerts) == len(falls)  # never twice (history re-sent, the device clearing it)
    for label in falls:
        start = datetime.fromisoformat(label["start"])
        (alert,) = [a for a in fall_alerts if a["device_id"] == label["device_id"] and
                    start <= datetime.fromisoformat(a["opened_at"]) <= start + timedelta(minutes=2)]  # fmt: skip
        assert alert["simulated"] is False and alert["late"] is False
    assert [a for a in alerts if a["category"] not in ("fall",)] == []  # a quiet care fleet: nothing else


def test_score_refuses_a_missing_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet.csv"
    fleet.write_text("device_id,kind\nx,care\n")
    assert main(["score", str(tmp_path / "nope.jsonl"), "--devices", str(fleet)]) == 1
    assert "no such capture file" in capsys.readouterr().err


def _score(
    tmp_path: Path, scenario: str, fleet: int, days: int, seed: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Simulate, score with labels and a report, and return the scorecard (as JSON) and the alerts."""
    from lorawatch import scorecard

    capture, devices, alerts_out = tmp_path / "c.jsonl", tmp_path / "d.csv", tmp_path / "a.jsonl"
    simulate = ["simulate", scenario, "--fleet", str(fleet), "--duration", f"{days}d", "--seed", str(seed), "--fast"]
    assert main([*simulate, "--out", str(capture), "--devices-out", str(devices), "--no-progress"]) == 0
    labels_file, report = Path(f"{capture}.labels.jsonl"), tmp_path / "r.html"
    score = ["score", str(capture), "--devices", str(devices), "--labels", str(labels_file)]
    assert main([*score, "--alerts-out", str(alerts_out), "--report", str(report), "--no-progress"]) == 0
    alerts, labels = scorecard.load_jsonl(alerts_out), scorecard.load_jsonl(labels_file)
    times = [m.time_ns for m in capture_file.read(capture)]
    first, last = (datetime.fromtimestamp(t / 1e9, UTC) for t in (min(times), max(times)))
    card = scorecard.score(alerts, labels, scorecard.devices_from_csv(devices.read_text()), first, last,
                           flood_fill_pct=40)  # fmt: skip
    assert report.read_text().startswith("<!DOCTYPE html>")
    return scorecard.as_json(card), alerts


def _rows(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["category"]: row for row in card["rows"]}


def test_the_gully_detectors_meet_their_targets_on_a_mixed_fleet(tmp_path: Path) -> None:
    """Storms above the warning level, blockage, silt, gateway outages and devices gone quiet are found
    (recall >= 0.95), at most one false alert per 100 sensor-days, and no fault ever reads as a flood."""
    card, _ = _score(tmp_path, "gully-mixed", 60, 21, 2)
    rows = _rows(card)
    for category in ("flood", "blockage", "silt", "gateway_offline", "offline"):
        row = rows.get(category)
        if row is not None and row["labels"]:
            assert row["recall"] >= 0.95, (category, row)
    assert rows["flood"]["labels"] > 0 and rows["blockage"]["labels"] > 0  # the run tests what it claims to
    (gully,) = [t for t in card["totals"] if t["fleet"] == "gully"]
    assert gully["fp_per_100_sensor_days"] <= 1.0
    assert card["false_floods_from_faults"] == 0


def test_the_care_detectors_meet_their_targets_on_a_mixed_fleet(tmp_path: Path) -> None:
    """Every fall is alerted at the uplink that carried it and never twice; welfare episodes are found;
    at most one false alert per 100 sensor-days."""
    card, _ = _score(tmp_path, "care-mixed", 8, 21, 2)
    rows = _rows(card)
    falls = rows["fall"]
    assert falls["labels"] > 0 and falls["tp"] == falls["labels"] and falls["dup"] == 0
    assert card["fall_at_uplink"] == falls["labels"]
    for category in ("inactivity", "night_activity"):
        if rows.get(category) and rows[category]["labels"]:
            assert rows[category]["recall"] >= 0.95, rows[category]
    (care,) = [t for t in card["totals"] if t["fleet"] == "care"]
    assert care["fp_per_100_sensor_days"] <= 1.0
