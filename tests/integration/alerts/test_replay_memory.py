"""Replay keeps rule states in memory and the registry read once (alerts/states.py), and runs ingest in
a second process ahead of the engine; the live worker reads and writes both in every pass, one batch at
a time. The two must raise the same alerts and leave the same states."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alerts.rules import DEFAULT_RULES_FILE, load_rules
from lorawatch.cli import main
from lorawatch.scoring import replay
from simulators import capture
from store import registry
from tests.fixtures.services import empty_database


def _run(url: str, path: Path, devices: Path, *, as_live: bool) -> tuple[list[tuple[Any, ...]], dict[Any, Any]]:
    empty_database(url)
    with psycopg.connect(url) as conn:
        assert registry.import_devices(conn, devices.read_bytes()).applied
        run = replay(conn, capture.read(path), load_rules(DEFAULT_RULES_FILE), as_live=as_live)
        assert run.straddled == 0  # the two-process replay never let a batch span a clock pass
        alerts = [
            (a.rule, a.subject, a.category, a.severity, a.state, a.opened_at, a.resolved_at, a.summary, a.late)
            for a in run.alerts
        ]
        states = {
            (r, s): (st, due) for r, s, st, due in conn.execute("SELECT rule, subject, state, due_at FROM rule_state")
        }
    return alerts, states


@pytest.mark.parametrize(("scenario", "fleet", "days"), [("gully-mixed", "16", "4d"), ("care-mixed", "6", "7d")])
def test_replay_in_memory_raises_what_the_live_engine_raises(
    db_url: str, tmp_path: Path, scenario: str, fleet: str, days: str
) -> None:
    path, devices = tmp_path / "c.jsonl", tmp_path / "d.csv"
    simulate = ["simulate", scenario, "--fleet", fleet, "--duration", days, "--seed", "3", "--fast"]
    assert main([*simulate, "--out", str(path), "--devices-out", str(devices), "--no-progress"]) == 0
    live_alerts, live_states = _run(db_url, path, devices, as_live=True)
    memory_alerts, memory_states = _run(db_url, path, devices, as_live=False)
    assert len({a[2] for a in live_alerts}) >= 2, live_alerts  # enough happened for the comparison to mean something
    assert memory_alerts == live_alerts
    assert memory_states == live_states


def test_a_failure_in_the_ingest_process_is_raised_with_its_traceback(db_url: str) -> None:
    def broken() -> Iterator[capture.Message]:
        raise ValueError("the capture broke at line 7")
        yield  # a generator

    with psycopg.connect(db_url) as conn, pytest.raises(RuntimeError, match="the capture broke at line 7"):
        replay(conn, broken(), load_rules(DEFAULT_RULES_FILE))
