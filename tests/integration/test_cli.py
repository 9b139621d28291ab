"""The console script against a real database: migrate, status, and clear errors."""

from __future__ import annotations

import json

import pytest

from lorawatch.cli import main


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("db", "status"):
        assert command in out


def test_db_migrate_then_status(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LORAWATCH_DATABASE_URL", db_url)
    assert main(["db", "migrate"]) == 0
    out = capsys.readouterr().out
    assert "nothing to apply" in out and "timescaledb" in out
    assert main(["db", "status"]) == 0
    assert "0 pending" in capsys.readouterr().out


def test_status_json_keys(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LORAWATCH_DATABASE_URL", db_url)
    assert main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"devices", "uplinks", "readings", "events", "duplicates", "dead_letters", "open_alerts"} <= set(data)
    assert isinstance(data["dead_letters"], dict)


def test_missing_database_url_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LORAWATCH_DATABASE_URL", raising=False)
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert "LORAWATCH_DATABASE_URL is not set" in err and "Traceback" not in err


def test_unreachable_database_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lorawatch.services import free_port

    monkeypatch.setenv("LORAWATCH_DATABASE_URL", f"postgresql://x@127.0.0.1:{free_port()}/x?connect_timeout=2")
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lorawatch:") and "Traceback" not in err


def test_settings_from_a_config_file(db_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("LORAWATCH_DATABASE_URL", raising=False)
    conf = tmp_path / "lorawatch.env"
    conf.write_text(f"LORAWATCH_DATABASE_URL={db_url}\nLORAWATCH_LOG_LEVEL=warning\n")
    assert main(["--config", str(conf), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["uplinks"] == 0


def test_missing_config_file_is_a_clear_error(tmp_path, capsys) -> None:
    assert main(["--config", str(tmp_path / "nope.env"), "status"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_ingest_without_broker_url_is_a_clear_error(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("LORAWATCH_DATABASE_URL", db_url)
    monkeypatch.delenv("LORAWATCH_MQTT_URL", raising=False)
    assert main(["ingest"]) == 2
    assert "LORAWATCH_MQTT_URL is not set" in capsys.readouterr().err


def test_ingest_with_a_bad_broker_url_is_a_clear_error(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("LORAWATCH_DATABASE_URL", db_url)
    monkeypatch.setenv("LORAWATCH_MQTT_URL", "http://broker")
    assert main(["ingest"]) == 2
    assert "must start with mqtt:// or mqtts://" in capsys.readouterr().err
