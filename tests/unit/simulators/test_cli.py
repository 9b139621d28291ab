"""`lorawatch simulate`, `record` and `replay` on the command line (no broker needed here)."""

from __future__ import annotations

import argparse
import json
import socket

import pytest

from lorawatch.cli import main
from lorawatch.cmd_simulate import parse_duration
from simulators import scenarios


@pytest.fixture(autouse=True)
def _no_broker_env(monkeypatch):
    monkeypatch.delenv("LORAWATCH_MQTT_URL", raising=False)


def test_durations():
    assert parse_duration("90") == 90
    assert parse_duration("15m") == 900
    assert parse_duration("12h") == 43200
    assert parse_duration("7d") == 7 * 86400
    with pytest.raises(argparse.ArgumentTypeError, match="not a duration"):
        parse_duration("soon")


def test_help_lists_every_scenario_with_its_description(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    out = capsys.readouterr().out
    for scenario in scenarios.SCENARIOS.values():
        assert f"  {scenario.name}  " in out and scenario.description in out


def test_an_unknown_scenario_lists_the_valid_ones(capsys):
    assert main(["simulate", "flood-of-the-century"]) == 2
    err = capsys.readouterr().err
    assert "unknown scenario 'flood-of-the-century'" in err and "gully-storms" in err and "care-falls" in err


def test_out_writes_a_capture_and_labels(tmp_path, capsys):
    out = tmp_path / "feed.jsonl"
    args = ["simulate", "care-falls", "--fleet", "2", "--duration", "3d", "--start", "2025-11-03T00:00:00Z"]
    assert main([*args, "--format", "chirpstack", "--out", str(out), "--no-progress"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines and all({"topic", "payload", "received_at", "qos", "retain"} <= set(line) for line in lines)
    assert all(line["topic"].startswith("application/") for line in lines)
    assert lines == sorted(lines, key=lambda line: line["received_at"])
    labels = [json.loads(line) for line in (tmp_path / "feed.jsonl.labels.jsonl").read_text().splitlines()]
    assert labels and {label["label"] for label in labels} == {"fall"}
    assert "wrote" in capsys.readouterr().err


def test_publishing_needs_a_broker_url(capsys):
    assert main(["simulate", "gully-storms", "--duration", "1h", "--no-progress"]) == 1
    assert "LORAWATCH_MQTT_URL is not set" in capsys.readouterr().err


def test_an_unreachable_broker_is_named_without_a_traceback(monkeypatch, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LORAWATCH_MQTT_URL", f"mqtt://sim:secret@127.0.0.1:{port}")
    assert main(["simulate", "gully-storms", "--fleet", "2", "--duration", "1h", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"mqtt://sim@127.0.0.1:{port}" in err and "secret" not in err and "Traceback" not in err


def test_replay_of_a_missing_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LORAWATCH_MQTT_URL", "mqtt://127.0.0.1:1")
    assert main(["replay", str(tmp_path / "nope.jsonl")]) == 1
    assert "no such capture file" in capsys.readouterr().err
