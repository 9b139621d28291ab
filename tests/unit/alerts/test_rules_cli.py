"""`lorawatch rules check`: exit 0 with a summary, exit 1 with every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.rules import DEFAULT_RULES_FILE
from lorawatch.cli import main
from lorawatch.settings import Settings

GOOD = """\
version: 1
routes:
  highways: {}
rules:
  - {name: gully-offline, category: offline, type: offline, expected_interval: 15m, route: highways}
"""


@pytest.fixture(autouse=True)
def _no_rules_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LORAWATCH_RULES_FILE", raising=False)


def test_a_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD)
    assert main(["rules", "check", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"ok: 1 rules, 2 routes in {path}\n" and captured.err == ""


def test_a_bad_file_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD.replace("route: highways", "route: nowhere").replace("15m", "15") + "extra: 1\n")
    assert main(["rules", "check", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"{path}:5: rules[0].expected_interval: 15 is not a duration: write a number and a unit, e.g. 30s, 5m, "
        "2h or 1d",
        f"{path}:5: rules[0].route: no route named 'nowhere' (defined: default, highways)",
        f"{path}:6: extra: unknown key",
        f"{path}: 3 problems",
    ]


def test_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml: cannot read the rules file" in capsys.readouterr().err


def test_without_a_file_it_checks_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert out.endswith(f"ok: 14 rules, 3 routes in {DEFAULT_RULES_FILE}\n")
    assert "  gully-flood (flood, flood) fill_pct: warning above 40%, critical above 60%, 2 readings running" in out


def test_without_a_file_it_checks_the_configured_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "configured.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("LORAWATCH_RULES_FILE", str(path))
    assert Settings().rules_file == path
    assert main(["rules", "check"]) == 0
    assert capsys.readouterr().out == f"ok: 1 rules, 2 routes in {path}\n"


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["rules", "check", "--help"])
    assert "LORAWATCH_RULES_FILE" in capsys.readouterr().out
