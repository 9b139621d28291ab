"""`lorawatch score`: a simulated capture replayed through ingest and the alert rules in the data's own
time; the falls its labels hold are alerted at the uplink that carries them, once each."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lorawatch.cli import main

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
