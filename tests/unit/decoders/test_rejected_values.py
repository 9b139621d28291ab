"""Values a codec drops as physically impossible are reported in `Normalized.rejected`, never lost."""

from __future__ import annotations

import decoders


def test_impossible_battery_is_reported_not_kept() -> None:
    out = decoders.normalize("milesight-iot/em500-udl", {"battery": 255, "distance": 1200})
    assert [m.name for m in out.measurements if m.name == "battery_pct"] == []
    assert [(m.name, m.value) for m in out.rejected] == [("battery_pct", 255.0)]
    assert any(m.name == "distance_mm" and m.value == 1200 for m in out.measurements)


def test_impossible_temperature_is_reported() -> None:
    out = decoders.normalize("milesight-iot/em410-rdl", {"temperature": 3276.7})
    assert [(m.name, m.value) for m in out.rejected] == [("temperature_c", 3276.7)]


def test_good_values_reject_nothing() -> None:
    assert decoders.normalize("milesight-iot/em500-udl", {"battery": 90}).rejected == []


def test_rejects_do_not_leak_between_calls() -> None:
    decoders.normalize("milesight-iot/em500-udl", {"battery": 255})
    assert decoders.normalize("milesight-iot/em500-udl", {"battery": 50}).rejected == []
