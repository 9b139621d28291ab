"""The README's configuration table is generated from the settings model; it must not drift."""

from __future__ import annotations

from pathlib import Path

from lorawatch.settings import settings_table

ROOT = Path(__file__).resolve().parents[3]


def test_readme_configuration_table_matches_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    assert settings_table() in readme, (
        "README.md's configuration table differs from lorawatch.settings.Settings; regenerate it with "
        "`python -c 'from lorawatch.settings import settings_table; print(settings_table())'`"
    )


def test_readme_names_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "scripts/demo" in readme and "scripts/test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in ci
