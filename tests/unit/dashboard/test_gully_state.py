"""A gully's overview state: open alerts decide first, the newest reading adds warning and rising only
when it can be trusted, the most urgent state wins, and the table sorts by risk. The flood levels come
from the first flood rule for gullies, else the shipped 40 / 60 %."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alerts.rules import DEFAULT_RULES_FILE, DeviceRef, RuleSet, load_rules, parse_rules
from dashboard.figures.map import STATE_STYLE
from dashboard.gully_state import (
    RISING_MM_PER_H,
    STALE_AFTER,
    STATES,
    FloodLevels,
    classify,
    flood_levels,
    sort_key,
)
from store.device_views import OFFLINE_AFTER
from store.overview import GullyStatus, OpenAlert

NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
LEVELS = FloodLevels(40.0, 60.0)


def gully(device_id: str = "g-1", **fields: object) -> GullyStatus:
    """A healthy gully heard five minutes ago: 5 % full, level steady."""
    base = GullyStatus(
        ref=1,
        device_id=device_id,
        application_id="app",
        name=None,
        location_name=None,
        latitude=None,
        longitude=None,
        sensor_height_mm=1000.0,
        outlet_invert_mm=400.0,
        last_seen=NOW - timedelta(minutes=5),
        reading_time=NOW - timedelta(minutes=5),
        distance_mm=570.0,
        level_mm=430.0,
        fill_pct=5.0,
        trend_mm_per_h=0.0,
        battery_v=3.6,
        battery_pct=90.0,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def alert(category: str, severity: str = "warning", alert_id: int = 1) -> OpenAlert:
    return OpenAlert(alert_id, category, severity, "firing", NOW - timedelta(hours=1))


def state_of(status: GullyStatus, levels: FloodLevels = LEVELS) -> str:
    return classify(status, levels, NOW).state


def test_a_quiet_gully_is_normal() -> None:
    got = classify(gully(), LEVELS, NOW)
    assert (got.state, got.label, got.rank) == ("normal", "Normal", 7)


@pytest.mark.parametrize(
    ("category", "severity", "expected"),
    [
        ("flood", "critical", "flooding"),
        ("flood", "warning", "warning"),
        ("rising", "warning", "rising"),
        ("blockage", "warning", "blockage"),
        ("silt", "warning", "silting"),
        ("sensor_fault", "warning", "sensor_fault"),
        ("offline", "warning", "offline"),
        ("gateway_offline", "critical", "offline"),
        ("anomaly", "info", "normal"),  # recorded for tuning; no state of its own
        ("battery_low", "warning", "normal"),  # the table shows the battery
    ],
)
def test_an_open_alert_decides_the_state(category: str, severity: str, expected: str) -> None:
    got = classify(gully(open_alerts=(alert(category, severity),)), LEVELS, NOW)
    assert got.state == expected
    if expected != "normal":
        assert category in got.reason


def test_a_flood_alert_holds_a_receding_gully_at_its_level() -> None:
    # The rule keeps the alert firing after the water drops (keep_firing_for): so does the overview.
    assert state_of(gully(fill_pct=2.0, trend_mm_per_h=-80.0, open_alerts=(alert("flood", "critical"),))) == "flooding"


def test_the_most_urgent_of_several_alerts_wins() -> None:
    alerts = (alert("silt", alert_id=1), alert("blockage", alert_id=2), alert("flood", "warning", alert_id=3))
    assert state_of(gully(open_alerts=alerts)) == "warning"
    alerts = (alert("silt", alert_id=1), alert("flood", "critical", alert_id=2), alert("blockage", alert_id=3))
    assert state_of(gully(open_alerts=alerts)) == "flooding"


def test_fill_at_the_warning_level_warns_without_an_alert() -> None:
    assert state_of(gully(fill_pct=40.0)) == "warning"
    assert state_of(gully(fill_pct=39.9)) == "normal"
    # Over the critical level but not confirmed by the flood rule: warning, not flooding.
    got = classify(gully(fill_pct=75.0), LEVELS, NOW)
    assert got.state == "warning"
    assert "75 % full" in got.reason
    # The rule's own level, not a constant.
    assert state_of(gully(fill_pct=25.0), FloodLevels(20.0, 50.0)) == "warning"


def test_a_fast_rise_is_rising() -> None:
    assert state_of(gully(trend_mm_per_h=RISING_MM_PER_H)) == "rising"
    assert state_of(gully(trend_mm_per_h=RISING_MM_PER_H - 0.1)) == "normal"
    assert state_of(gully(trend_mm_per_h=-500.0)) == "normal"
    assert state_of(gully(trend_mm_per_h=None)) == "normal"


def test_measurements_outrank_slower_alerts() -> None:
    # A silting gully in a storm is rising; a blocked one over its warning level is at warning.
    assert state_of(gully(trend_mm_per_h=120.0, open_alerts=(alert("silt"),))) == "rising"
    assert state_of(gully(fill_pct=48.0, open_alerts=(alert("blockage"),))) == "warning"


def test_readings_of_a_faulty_or_silent_sensor_are_not_believed() -> None:
    assert state_of(gully(fill_pct=95.0, trend_mm_per_h=900.0, open_alerts=(alert("sensor_fault"),))) == "sensor_fault"
    assert state_of(gully(fill_pct=95.0, open_alerts=(alert("offline"),))) == "offline"


def test_a_stale_reading_sets_nothing() -> None:
    old = NOW - STALE_AFTER - timedelta(minutes=1)
    got = classify(gully(reading_time=old, fill_pct=70.0, trend_mm_per_h=200.0), LEVELS, NOW)
    assert (got.state, got.reason) == ("normal", "no open alerts; no recent reading")
    assert state_of(gully(reading_time=NOW - STALE_AFTER, fill_pct=70.0)) == "warning"


def test_never_heard_and_long_silent_gullies_are_offline() -> None:
    never = classify(gully(last_seen=None, reading_time=None, fill_pct=None, trend_mm_per_h=None), LEVELS, NOW)
    assert (never.state, never.label, never.reason) == ("offline", "Offline (never heard)", "never heard")
    silent = NOW - OFFLINE_AFTER - timedelta(minutes=1)
    assert state_of(gully(last_seen=silent, reading_time=silent, fill_pct=80.0)) == "offline"
    # Silent but with a flood alert still open: the flood is the more urgent thing to know.
    assert state_of(gully(last_seen=silent, open_alerts=(alert("flood", "critical"),))) == "flooding"


def test_states_rank_in_the_order_the_map_draws_them() -> None:
    assert list(STATES) == list(STATE_STYLE)
    assert [rank for _, rank in STATES.values()] == list(range(len(STATES)))
    assert all(STATES[s][0] == STATE_STYLE[s].label for s in STATES)


def test_sorted_by_risk_then_fill_then_trend() -> None:
    rows = [
        gully("quiet", fill_pct=1.0),
        gully("full-a", fill_pct=45.0),
        gully("flooding", open_alerts=(alert("flood", "critical"),)),
        gully("full-b", fill_pct=55.0),
        gully("unknown-fill", fill_pct=None, level_mm=None, trend_mm_per_h=None),
        gully("rising", trend_mm_per_h=60.0),
        gully("faster", trend_mm_per_h=90.0),
        gully("never", last_seen=None, reading_time=None, fill_pct=None),
        gully("blocked", open_alerts=(alert("blockage"),)),
        gully("emptier", fill_pct=-3.0),
    ]
    ordered = sorted(rows, key=lambda s: sort_key(s, classify(s, LEVELS, NOW)))
    assert [s.device_id for s in ordered] == [
        "flooding", "full-b", "full-a", "faster", "rising", "blocked", "never", "quiet", "emptier", "unknown-fill",
    ]  # fmt: skip


def test_flood_levels_default_to_the_shipped_rules() -> None:
    assert flood_levels(None) == FloodLevels(40.0, 60.0)
    assert flood_levels(load_rules(DEFAULT_RULES_FILE)) == FloodLevels(40.0, 60.0)


RULES = """\
version: 1
rules:
  - {name: care-thing, category: flood, type: flood, applies_to: {kind: care}, warning: {above: 10}}
  - {name: switched-off, category: flood, type: flood, disabled: true, warning: {above: 15}, critical: {above: 25}}
  - {name: pinned, category: flood, type: flood, applies_to: {devices: [g-7]},
     warning: {above: 20}, critical: {above: 30}}
  - {name: town, category: flood, type: flood, applies_to: {kind: gully}, warning: {above: 35}, critical: {above: 55}}
  - {name: later, category: flood, type: flood, warning: {above: 45}, critical: {above: 65}}
overrides:
  g-9:
    town: {warning: {above: 25}}
"""


def test_flood_levels_come_from_the_first_flood_rule_for_all_gullies() -> None:
    rules = parse_rules(RULES)
    assert flood_levels(rules) == FloodLevels(35.0, 55.0)


def test_flood_levels_of_one_gully_follow_its_rules_and_overrides() -> None:
    rules = parse_rules(RULES)
    assert flood_levels(rules, DeviceRef("g-7", "app", "gully")) == FloodLevels(20.0, 30.0)
    assert flood_levels(rules, DeviceRef("g-9", "app", "gully")) == FloodLevels(25.0, 55.0)
    assert flood_levels(rules, DeviceRef("g-1", "app", "gully")) == FloodLevels(35.0, 55.0)


def one_rule(levels: str) -> RuleSet:
    return parse_rules(f"version: 1\nrules:\n  - {{name: f, category: flood, type: flood, {levels}}}\n")


def test_a_rule_with_one_level() -> None:
    assert flood_levels(one_rule("critical: {above: 70}")) == FloodLevels(70.0, 70.0)
    assert flood_levels(one_rule("warning: {above: 30}")) == FloodLevels(30.0, None)
