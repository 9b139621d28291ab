"""`lorawatch demo` with nothing configured: its own servers, the ingester and simulated feeds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lorawatch.cli import main


@pytest.mark.slow
def test_demo_runs_with_its_own_servers_and_stores_simulated_uplinks(
    service_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LORAWATCH_DATABASE_URL", raising=False)
    monkeypatch.delenv("LORAWATCH_MQTT_URL", raising=False)
    monkeypatch.setenv("LORAWATCH_DATA_DIR", str(service_root / "demo"))
    assert main(["demo", "--for", "15", "--every", "5", "--speed", "600"]) == 0
    out = capsys.readouterr().out
    assert "starting PostgreSQL + TimescaleDB" in out and "starting Mosquitto" in out
    last = [line for line in out.splitlines() if line.startswith("status:")][-1]
    found = [re.search(rf"\b{name} (\d+)", last) for name in ("uplinks", "devices")]
    assert all(m and int(m[1]) > 0 for m in found), last
    assert "dead_letters {}" in last  # simulated feeds are well-formed: nothing rejected
    assert (service_root / "demo" / "postgres" / "data" / "PG_VERSION").exists()
