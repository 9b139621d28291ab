"""The scorecard's matching rules on hand-made alerts and labels: each test is one rule of
lorawatch/scorecard.py's docstring, with numbers small enough to check by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lorawatch.scorecard import DeviceInfo, Row, Scorecard, as_json, devices_from_csv, format_table, load_jsonl, score

T0 = datetime(2026, 3, 1, tzinfo=UTC)
FIRST, LAST = T0, T0 + timedelta(days=5)
# Gullies with 600 mm from the outlet invert to the sensor: the 60 % warning level is 360 mm of water.
GULLIES = [DeviceInfo(f"g{i}", "gully", 1000.0, 400.0, None) for i in range(1, 5)]
CARE = [DeviceInfo("bed-a", "care", None, None, "res-a"), DeviceInfo("hall-a", "care", None, None, "res-a")]
DEVICES = GULLIES + CARE


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


_ids = iter(range(1, 10_000))


def alert(
    category: str,
    opened: float,
    *,
    device: str | None = "g1",
    resolved: float | None = None,
    rule: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": next(_ids),
        "rule": rule or f"{category}-rule",
        "category": category,
        "severity": "warning",
        "device_id": device,
        "gateway_id": None,
        "opened_at": at(opened),
        "resolved_at": None if resolved is None else at(resolved),
        "late": False,
        "simulated": False,
    } | extra


def label(kind: str, start: float, end: float, device: str = "g1", **extra: Any) -> dict[str, Any]:
    return {"label": kind, "device_id": device, "start": at(start), "end": at(end)} | extra


def storm(peak_mm: float, start: float = 0, peak: float = 60, end: float = 180, device: str = "g1") -> dict[str, Any]:
    return label("storm", start, end, device, storm_id=1, rain_end=at(peak), peak_mm=peak_mm, peak_at=at(peak))


def card_of(alerts: list[dict[str, Any]], labels: list[dict[str, Any]]) -> Scorecard:
    return score(alerts, labels, DEVICES, FIRST, LAST)


def row(card: Scorecard, category: str) -> Row:
    return next(r for r in card.rows if r.category == category)


def outcomes(card: Scorecard) -> list[tuple[str, str]]:
    return sorted((m.category, m.outcome) for m in card.matches)


def test_storm_above_the_warning_level_is_caught_by_a_flood_alert_with_its_lead_time() -> None:
    card = card_of([alert("flood", 45)], [storm(420.0)])  # 70 % fill
    flood = row(card, "flood")
    assert (flood.labels, flood.tp, flood.missed, flood.recall, flood.fp) == (1, 1, 0, 1.0, 0)
    assert flood.timing == "lead" and flood.median_min == pytest.approx(15.0)  # peak at 60, alert at 45
    assert outcomes(card) == [("flood", "tp")]


def test_storm_below_the_warning_level_expects_nothing_but_explains_its_flood_and_rising_alerts() -> None:
    card = card_of([alert("flood", 50), alert("rising", 20)], [storm(300.0)])  # 50 % fill
    assert outcomes(card) == [("flood", "explained"), ("rising", "explained")]
    assert row(card, "flood").labels == 0 and row(card, "flood").fp == 0 and row(card, "flood").recall is None
    assert card.storms_below_warning == 1
    # The level is a parameter: at 45 % the same storm is expected, and caught.
    assert outcomes(score([alert("flood", 50)], [storm(300.0)], DEVICES, FIRST, LAST, flood_fill_pct=45)) == [
        ("flood", "tp")
    ]


def test_a_storm_with_no_alert_is_missed() -> None:
    card = card_of([], [storm(500.0)])
    assert (row(card, "flood").labels, row(card, "flood").missed, row(card, "flood").recall) == (1, 1, 0.0)


def test_a_blockage_with_no_alert_is_missed_and_the_miss_is_listed() -> None:
    card = card_of([], [label("blockage", 100, 7000, drain_time_factor=20.0)])
    blockage = row(card, "blockage")
    assert (blockage.labels, blockage.tp, blockage.missed, blockage.recall) == (1, 0, 1, 0.0)
    (miss,) = card.matches
    assert (
        miss.outcome == "miss" and miss.alert is None and miss.label is not None and miss.label["label"] == "blockage"
    )


def test_a_second_alert_for_the_same_fall_is_a_duplicate_and_one_after_the_fall_is_false() -> None:
    fall = label(
        "fall", 600, 610, "bed-a", resident="res-a", room="bedroom", alarm_id=1, device_ids=["bed-a", "hall-a"]
    )
    alerts = [
        alert("fall", 600.05, device="bed-a"),
        alert("fall", 603, device="bed-a"),
        alert("fall", 611, device="bed-a"),
    ]
    card = card_of(alerts, [fall])
    assert [m.outcome for m in card.matches] == ["tp", "dup", "fp"]  # the fall window has no grace after it
    r = row(card, "fall")
    assert (r.tp, r.dup, r.fp, r.alerts) == (1, 1, 1, 3)
    assert r.median_min == pytest.approx(0.05)
    assert card.fall_at_uplink == 1


def test_a_fall_alert_a_few_minutes_late_is_a_tp_but_not_at_the_uplink() -> None:
    fall = label("fall", 600, 610, "bed-a", resident="res-a", device_ids=["bed-a", "hall-a"])
    card = card_of([alert("fall", 602, device="bed-a")], [fall])
    assert row(card, "fall").tp == 1 and card.fall_at_uplink == 0


def test_a_flood_alert_during_a_stuck_sensor_is_a_false_flood() -> None:
    card = card_of([alert("flood", 130, resolved=200), alert("sensor_fault", 125)], [label("stuck", 120, 600)])
    assert outcomes(card) == [("flood", "fp"), ("sensor_fault", "tp")]
    assert row(card, "flood").fp == 1 and card.false_floods_from_faults == 1
    # The fault wins over a storm below the warning level that would otherwise explain the flood alert.
    card = card_of([alert("flood", 130)], [label("stuck", 120, 600), storm(300.0, start=100)])
    assert outcomes(card) == [("flood", "fp"), ("sensor_fault", "miss")] and card.false_floods_from_faults == 1
    # ... but not over a storm that is expected to flood: then the flood alert is its TP.
    card = card_of([alert("flood", 130)], [label("stuck", 120, 600), storm(500.0, start=100, peak=160)])
    assert outcomes(card) == [("flood", "tp"), ("sensor_fault", "miss")] and card.false_floods_from_faults == 0


def test_a_flood_alert_over_nothing_is_false_but_not_a_false_flood_from_a_fault() -> None:
    card = card_of([alert("flood", 130)], [])
    assert outcomes(card) == [("flood", "fp")] and card.false_floods_from_faults == 0


def outage(device: str, gateway: str = "gw-1", start: float = 1000, end: float = 1300) -> dict[str, Any]:
    return label("gateway_outage", start, end, device, gateway_id=gateway)


def test_a_gateway_outage_over_three_devices_is_one_expected_alert_matched_by_gateway_id() -> None:
    labels = [outage("g1"), outage("g2"), outage("g3")]
    gateway_alert = alert("gateway_offline", 1010, device=None, gateway_id="gw-1")
    card = card_of([gateway_alert], labels)
    r = row(card, "gateway_offline")
    assert (r.labels, r.tp, r.missed, r.fp) == (1, 1, 0, 0)
    (match,) = card.matches
    assert match.label is not None and match.label["device_ids"] == ["g1", "g2", "g3"]
    # Another gateway's alert does not match it; nor does an alert long after it.
    card = card_of([alert("gateway_offline", 1010, device=None, gateway_id="gw-2")], labels)
    assert outcomes(card) == [("gateway_offline", "fp"), ("gateway_offline", "miss")]
    # Two outages of the same gateway are two expected alerts.
    card = card_of([gateway_alert], [*labels, outage("g1", start=3000, end=3100)])
    assert (row(card, "gateway_offline").labels, row(card, "gateway_offline").tp) == (2, 1)


def test_an_offline_alert_behind_a_dead_gateway_is_a_duplicate_of_the_outage() -> None:
    labels = [outage("g1"), outage("g2"), outage("g3")]
    alerts = [alert("gateway_offline", 1010, device=None, gateway_id="gw-1"), alert("offline", 1045, device="g2")]
    card = card_of(alerts, labels)
    assert outcomes(card) == [("gateway_offline", "tp"), ("offline", "dup")]
    offline = row(card, "offline")
    assert (offline.dup, offline.fp, offline.tp, offline.labels) == (1, 0, 0, 0)
    (dup,) = [m for m in card.matches if m.outcome == "dup"]
    assert dup.label is not None and dup.label["label"] == "gateway_outage" and dup.label["gateway_id"] == "gw-1"
    # A device silent on its own is the offline rule's TP.
    card = card_of([alert("offline", 1045, device="g4")], [label("offline", 1000, 1300, "g4")])
    assert outcomes(card) == [("offline", "tp")]


def test_late_and_simulated_alerts_are_left_out_and_only_counted() -> None:
    card = card_of([alert("flood", 10, late=True), alert("flood", 20, simulated=True)], [storm(500.0)])
    assert [(m.category, m.outcome) for m in card.matches] == [("flood", "miss")]
    flood = row(card, "flood")
    assert (flood.late, flood.alerts, flood.fp, flood.tp) == (2, 0, 0, 0)
    assert card.late == 2
    (by_rule,) = card.by_rule
    assert (by_rule.name, by_rule.late, by_rule.missed) == ("flood-rule", 2, 1)


def test_false_positives_per_100_sensor_days_of_the_category_fleet() -> None:
    # 4 gullies x 5 days = 20 sensor-days; 2 care devices x 5 days = 10.
    alerts = [alert("rising", 100), alert("rising", 900, device="g2"), alert("offline", 300, device="hall-a")]
    card = card_of(alerts, [])
    assert card.sensor_days == {"gully": 20.0, "care": 10.0}
    assert row(card, "rising").fp_per_100_sensor_days == pytest.approx(10.0)  # 2 / 20 x 100
    assert row(card, "offline").fleets == ("care",)  # offline takes the kind of its device
    assert row(card, "offline").fp_per_100_sensor_days == pytest.approx(10.0)  # 1 / 10 x 100
    totals = {t.fleet: (t.devices, t.sensor_days, t.fp, t.fp_per_100_sensor_days) for t in card.totals}
    assert totals == {"gully": (4, 20.0, 2, 10.0), "care": (2, 10.0, 1, 10.0)}  # exact in binary


def test_care_labels_match_any_device_of_the_flat_or_the_care_group() -> None:
    inactive = label("inactivity", 2000, 2300, "bed-a", resident="res-a", room="living", device_ids=["bed-a", "hall-a"])
    card = card_of([alert("inactivity", 2100, device="hall-a")], [inactive])
    assert outcomes(card) == [("inactivity", "tp")]
    card = card_of([alert("inactivity", 2100, device=None, care_group="res-a")], [inactive])
    assert outcomes(card) == [("inactivity", "tp")]
    card = card_of([alert("inactivity", 2100, device="other", care_group="res-b")], [inactive])
    assert outcomes(card) == [("inactivity", "fp"), ("inactivity", "miss")]
    # An alert without a care group takes its device's from the registry (a sensor not in device_ids).
    kitchen = DeviceInfo("kitchen-a", "care", None, None, "res-a")
    card = score([alert("inactivity", 2100, device="kitchen-a")], [inactive], [*DEVICES, kitchen], FIRST, LAST)
    assert outcomes(card) == [("inactivity", "tp")]
    wander = label("night_wandering", 3000, 3050, "hall-a", resident="res-a", device_ids=["bed-a", "hall-a"])
    assert outcomes(card_of([alert("night_activity", 3020, device="bed-a")], [wander])) == [("night_activity", "tp")]


def test_windows_battery_low_may_open_two_days_early_others_an_hour_late() -> None:
    battery = label("battery_low", 3 * 1440, 5 * 1440)
    card = card_of([alert("battery_low", 3 * 1440 - 1440)], [battery])  # a day early
    assert outcomes(card) == [("battery_low", "tp")]
    assert row(card, "battery_low").median_min == pytest.approx(-1440.0)
    assert outcomes(card_of([alert("battery_low", 3 * 1440 - 3 * 1440 + 1)], [battery])) == [
        ("battery_low", "fp"),
        ("battery_low", "miss"),
    ]
    silt = label("silt", 100, 200)
    assert outcomes(card_of([alert("silt", 259)], [silt])) == [("silt", "tp")]
    assert outcomes(card_of([alert("silt", 261)], [silt])) == [("silt", "fp"), ("silt", "miss")]
    assert outcomes(card_of([alert("silt", 99)], [silt])) == [("silt", "fp"), ("silt", "miss")]


def test_the_earliest_alert_takes_the_label_and_the_delays_give_median_and_p90() -> None:
    labels = [label("tilt", 0, 2000, f"g{i}", tilt_factor=1.2) for i in range(1, 5)]
    alerts = [alert("sensor_fault", d, device=f"g{i}") for i, d in zip(range(1, 5), (40, 30, 20, 10), strict=True)]
    card = card_of([alert("sensor_fault", 500, device="g1"), *alerts], labels)
    r = row(card, "sensor_fault")
    assert (r.tp, r.dup) == (4, 1)
    assert r.median_min == pytest.approx(25.0) and r.p90_min == pytest.approx(37.0)
    assert r.timing == "delay"


def test_spikes_parked_vehicles_and_rejoins_explain_sensor_faults_and_anomalies_are_for_the_record() -> None:
    labels = [label("spike", 100, 100), label("parked_vehicle", 500, 600, "g2"), label("rejoin", 900, 900, "g3")]
    alerts = [
        alert("sensor_fault", 100.5),
        alert("sensor_fault", 550, device="g2"),
        alert("sensor_fault", 920, device="g3"),
        alert("anomaly", 100.2),
        alert("anomaly", 4000),
        alert("sensor_fault", 4000),
    ]
    card = card_of(alerts, labels)
    assert outcomes(card) == [
        ("anomaly", "explained"),
        ("anomaly", "record"),
        ("sensor_fault", "explained"),
        ("sensor_fault", "explained"),
        ("sensor_fault", "explained"),
        ("sensor_fault", "fp"),
    ]
    anomaly = row(card, "anomaly")
    assert (anomaly.alerts, anomaly.fp, anomaly.explained, anomaly.fp_per_100_sensor_days) == (2, 0, 1, None)
    assert (card.anomalies, card.anomalies_overlapping) == (2, 1)


def test_rows_by_rule_split_a_category_by_its_rules() -> None:
    labels = [label("offline", 100, 200, "g1"), label("offline", 100, 200, "bed-a")]
    alerts = [alert("offline", 150, rule="gully-offline"), alert("offline", 900, device="g2", rule="gully-offline")]
    card = card_of(alerts, labels)
    offline = row(card, "offline")
    assert (offline.labels, offline.tp, offline.fp, offline.fleets) == (2, 1, 1, ("gully", "care"))
    assert offline.fp_per_100_sensor_days == pytest.approx(100 / 30)
    (gully,) = card.by_rule
    assert (gully.name, gully.labels, gully.tp, gully.missed, gully.fp, gully.fleets) == (
        "gully-offline",
        1,
        1,
        0,
        1,
        ("gully",),
    )
    assert gully.fp_per_100_sensor_days == pytest.approx(5.0)


def test_format_table_shows_the_numbers() -> None:
    alerts = [alert("flood", 45, rule="gully-fill"), alert("rising", 4000), alert("rising", 4100, late=True)]
    card = card_of(alerts, [storm(420.0), label("blockage", 100, 7000, "g2")])
    text = format_table(card)
    lines = text.splitlines()
    header = lines[0].split()
    assert header[:5] == ["category", "alerts", "labels", "TP", "missed"]
    flood = next(line for line in lines if line.startswith("flood "))
    assert flood.split() == ["flood", "1", "1", "1", "0", "100.0%", "0", "0", "0", "0", "0.00", "lead", "15.0", "15.0"]
    rising = next(line for line in lines if line.startswith("rising "))
    assert rising.split()[1:10] == ["1", "0", "0", "0", "-", "1", "0", "0", "1"]
    assert "5.00" in rising  # 1 FP / 20 gully sensor-days
    blockage = next(line for line in lines if line.startswith("blockage "))
    assert blockage.split()[1:6] == ["0", "1", "0", "1", "0.0%"]
    assert any(line.startswith("gully-fill ") and " flood " in line for line in lines)
    assert "gully fleet: 4 devices x 5.00 days = 20.0 sensor-days" in text
    assert "1 false positives = 5.00 per 100 sensor-days" in text
    assert "never counted as false positives" in text


def test_as_json_is_plain_json() -> None:
    card = card_of([alert("flood", 45)], [storm(420.0)])
    data = json.loads(json.dumps(as_json(card)))
    assert data["rows"][0]["category"] == "flood" and data["rows"][0]["median_min"] == pytest.approx(15.0)
    assert data["matches"][0]["outcome"] == "tp" and data["first"] == T0.isoformat()


def test_load_jsonl_names_the_file_and_line_of_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"id": 1}\n\n{"id": 2\n')
    with pytest.raises(ValueError, match=r"alerts\.jsonl:3: not valid JSON"):
        load_jsonl(path)
    path.write_text('{"id": 1}\n\n{"id": 2}\n')
    assert load_jsonl(path) == [{"id": 1}, {"id": 2}]
    path.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match=r"alerts\.jsonl:1: expected a JSON object"):
        load_jsonl(path)


def test_devices_from_csv_reads_the_registry_columns_with_blanks_as_none() -> None:
    text = (
        "\ufeffdevice_id,application_id,kind,sensor_height_mm,outlet_invert_mm,care_room,care_group\n"
        "g1,app,gully,1000.5,400,,\n"
        "\n"
        "bed-a,app,care,,,bedroom,res-a\n"
    )
    assert devices_from_csv(text) == [
        DeviceInfo("g1", "gully", 1000.5, 400.0, None),
        DeviceInfo("bed-a", "care", None, None, "res-a"),
    ]
    assert devices_from_csv("device_id\nx\n") == [DeviceInfo("x", "unassigned", None, None, None)]
    with pytest.raises(ValueError, match="line 2: sensor_height_mm is not a number"):
        devices_from_csv("device_id,sensor_height_mm\ng1,tall\n")


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="alert 7: no opened_at"):
        card_of([{"id": 7, "rule": "r", "category": "flood"}], [])
    with pytest.raises(ValueError, match=r"label #1 \(storm\) start: .* has no time zone"):
        card_of([], [{"label": "storm", "device_id": "g1", "start": "2026-03-01T00:00:00", "end": at(1)}])
    with pytest.raises(ValueError, match="before it starts"):
        score([], [], DEVICES, LAST, FIRST)


def test_storms_on_gullies_without_geometry_and_unknown_labels_are_noted() -> None:
    card = card_of([], [storm(500.0, device="nowhere"), label("meteor", 0, 1)])
    assert card.rows == [] and len(card.notes) == 2
    assert "1 storm labels on devices without" in card.notes[0] and "meteor (1)" in card.notes[1]
