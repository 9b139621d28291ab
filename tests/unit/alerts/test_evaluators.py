"""The pure evaluators: each rule type fires, ignores noise, resolves; late data never pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.decisions import Fire, Late, Note, Open, Reseverity, Resolve
from alerts.evaluators import device_alarm, levels, offline
from alerts.evaluators.condition import ConditionState, tick
from alerts.rules import BatteryRule, DeviceAlarmRule, ThresholdRule, parse_rules

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
RULES = parse_rules("""\
version: 1
rules:
  - {name: fill, category: flood, type: threshold, metric: fill_pct, warning: {above: 60}, critical: {above: 85},
     hysteresis: 5, for: 5m, keep_firing_for: 15m}
  - {name: now, category: flood, type: threshold, metric: level_mm, critical: {above: 300}}
  - {name: battery, category: battery_low, type: battery, below_v: 3.1, clear_above_v: 3.3, for: 1h}
  - {name: fall, category: fall, type: device_alarm, event: alarm, match: {alarm_type: fall}}
  - {name: offline, category: offline, type: offline, expected_interval: 15m, missed: 3}
""")


def rule(name: str) -> Any:
    return RULES.rule(name)


def run(r: ThresholdRule, values: list[tuple[int, float]]) -> tuple[ConditionState, list[Any]]:
    """Feed (minute, value) readings; all decisions in order."""
    state, out = ConditionState(), []
    for minute, value in values:
        state, decisions = levels.threshold(r, state, T0 + timedelta(minutes=minute), value)
        out.extend(decisions)
    return state, out


def test_threshold_opens_pending_fires_after_for_and_resolves_after_keep_firing_for() -> None:
    state, out = run(rule("fill"), [(0, 50), (1, 70), (3, 72), (6, 75), (10, 40), (20, 40), (26, 40)])
    assert [type(d) for d in out] == [Open, Fire, Resolve]
    opened, fired, resolved = out
    assert (opened.at, opened.severity, opened.firing) == (T0 + timedelta(minutes=1), "warning", False)
    assert fired.at == T0 + timedelta(minutes=6)
    assert resolved.at == T0 + timedelta(minutes=26)  # 15 min after it first cleared at minute 10
    assert state.alert is None


def test_a_spike_shorter_than_for_is_dropped_without_firing() -> None:
    _, out = run(rule("fill"), [(0, 90), (2, 30)])
    assert [type(d) for d in out] == [Open, Resolve]
    assert "before it had held for 5m" in out[1].reason


def test_hysteresis_keeps_jitter_on_the_line_from_flapping() -> None:
    _, out = run(rule("fill"), [(0, 61), (6, 59), (7, 61), (8, 56), (9, 62), (10, 57)])
    assert [type(d) for d in out] == [Open, Fire]  # 56..59 are inside the 5-point band


def test_severity_moves_up_and_back_down_within_one_alert() -> None:
    _, out = run(rule("fill"), [(0, 70), (6, 70), (7, 90), (8, 82), (9, 79)])
    assert [type(d) for d in out] == [Open, Fire, Reseverity, Reseverity]
    assert [d.severity for d in out[2:]] == ["critical", "warning"]  # 82 holds critical (band 80), 79 not


def test_no_for_fires_at_once() -> None:
    _, out = run(rule("now"), [(0, 310)])
    assert isinstance(out[0], Open) and out[0].firing


def test_the_clock_fires_a_pending_alert_when_no_more_data_comes() -> None:
    state, _ = run(rule("fill"), [(0, 70)])
    r = rule("fill")
    state, early = tick(state, T0 + timedelta(minutes=4), for_=r.for_, keep_firing_for=r.keep_firing_for)
    assert early == []
    state, due = tick(state, T0 + timedelta(minutes=5), for_=r.for_, keep_firing_for=r.keep_firing_for)
    assert due == [Fire(T0 + timedelta(minutes=5), "warning", 70)]
    assert state.alert == "firing"


def test_the_clock_resolves_after_keep_firing_for() -> None:
    state, _ = run(rule("fill"), [(0, 90), (6, 90), (7, 30)])
    r = rule("fill")
    state, out = tick(state, T0 + timedelta(minutes=21), for_=r.for_, keep_firing_for=r.keep_firing_for)
    assert out == [] and state.alert == "firing"
    state, out = tick(state, T0 + timedelta(minutes=23), for_=r.for_, keep_firing_for=r.keep_firing_for)
    assert out == [Resolve(T0 + timedelta(minutes=22), "the condition ended")] and state.alert is None


def test_a_late_reading_never_moves_the_live_state() -> None:
    state, _ = run(rule("now"), [(10, 100)])
    state2, out = levels.threshold(rule("now"), state, T0 + timedelta(minutes=5), 400)
    assert state2 == state
    assert [type(d) for d in out] == [Late]


def test_state_round_trips_through_json() -> None:
    state, _ = run(rule("fill"), [(0, 70), (6, 70), (7, 30)])
    assert ConditionState.from_json(state.to_json()) == state


def test_battery_needs_for_and_clears_only_when_recovered() -> None:
    r: BatteryRule = rule("battery")
    state, out = ConditionState(), []
    for minute, volts in [(0, 3.0), (30, 3.05), (61, 3.0), (70, 3.2), (80, 3.35)]:
        state, decisions = levels.battery(r, state, T0 + timedelta(minutes=minute), volts, None)
        out.extend(decisions)
    assert [type(d) for d in out] == [Open, Fire, Resolve]
    assert out[2].at == T0 + timedelta(minutes=80)  # 3.2 V is not yet recovered (clear above 3.3)


def alarm(status: str, alarm_id: int = 7) -> dict[str, Any]:
    return {"alarm_id": alarm_id, "alarm_type": "fall", "alarm_status": status}


def test_a_fall_opens_at_once_and_its_history_never_opens_a_second() -> None:
    r: DeviceAlarmRule = rule("fall")
    state = device_alarm.AlarmState()
    state, out = device_alarm.evaluate(r, state, T0, "alarm", alarm("alarm_triggered"))
    assert len(out) == 1 and isinstance(out[0], Open) and out[0].firing and out[0].alarm_key == "7"
    state, again = device_alarm.evaluate(r, state, T0 - timedelta(seconds=20), "alarm", alarm("alarm_triggered"))
    assert [type(d) for d in again] == [Note]
    state, cleared = device_alarm.evaluate(r, state, T0 + timedelta(minutes=1), "alarm", alarm("alarm_deactivated"))
    (note,) = cleared
    assert isinstance(note, Note) and "cleared" in note.text
    assert state.open  # a person still has to acknowledge a fall


def test_other_alarm_types_and_statuses_are_not_falls() -> None:
    r: DeviceAlarmRule = rule("fall")
    state = device_alarm.AlarmState()
    _, out = device_alarm.evaluate(
        r, state, T0, "alarm", {"alarm_id": 1, "alarm_type": "dwell", "alarm_status": "alarm_triggered"}
    )
    assert out == []
    _, out = device_alarm.evaluate(r, state, T0, "alarm", alarm("alarm_ignored"))
    assert out == []


def test_offline_opens_on_the_clock_and_resolves_on_the_next_uplink() -> None:
    r = rule("offline")
    state, _ = offline.seen(offline.OfflineState(), T0)
    silent = r.silent_after({})
    state, out = offline.tick(state, T0 + timedelta(minutes=44), silent, r.severity)
    assert out == []
    state, out = offline.tick(state, T0 + timedelta(minutes=46), silent, r.severity)
    assert [type(d) for d in out] == [Open] and out[0].at == T0 + timedelta(minutes=45)
    state, out = offline.tick(state, T0 + timedelta(minutes=90), silent, r.severity)
    assert out == []  # one alert, not one per tick
    state, out = offline.seen(state, T0 + timedelta(minutes=95))
    assert [type(d) for d in out] == [Resolve] and not state.open
