"""Gully flood physics: confirmed by `confirm` readings, never by one echo; impossible jumps and a
parked vehicle's plateau are not water; the alert holds for `keep_firing_for` after the water drops."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.decisions import Decision, Open, Reseverity, Resolve
from alerts.evaluators.flood import FloodState, due, level_at, observe, tick
from alerts.evaluators.observations import LevelObs
from alerts.rules import FloodRule, parse_rules
from simulators import hydrology
from simulators.hydrology import HOUR, GullyGeometry, Pot

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
HEIGHT = 1000.0  # sensor face above the pot floor
INVERT = 400.0  # outlet invert: the standing water level (fill 0 %)
SPAN = HEIGHT - INVERT  # 1 % fill = 6 mm


def make_rule(**overrides: Any) -> FloodRule:
    data: dict[str, Any] = {
        "name": "f",
        "category": "flood",
        "type": "flood",
        "warning": {"above": 60},
        "critical": {"above": 85},
    }
    data.update(overrides)
    return FloodRule.model_validate(data)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def level_obs(when: datetime, level_mm: float, *, tilted: bool = False) -> LevelObs:
    """A reading whose surface is `level_mm` above the pot floor (the gully's own geometry)."""
    excess = level_mm - INVERT
    return LevelObs(when, HEIGHT - level_mm, True, level_mm, excess, 100.0 * excess / SPAN, tilted)


def pct_obs(when: datetime, pct: float) -> LevelObs:
    return level_obs(when, INVERT + pct * SPAN / 100.0)


def no_echo(when: datetime) -> LevelObs:
    return LevelObs(when, None, False, None, None, None, None)


def run(
    rule: FloodRule, readings: list[LevelObs], state: FloodState | None = None
) -> tuple[FloodState, list[Decision]]:
    state = state or FloodState()
    out: list[Decision] = []
    for obs in readings:
        state, decisions = observe(rule, state, obs)
        out.extend(decisions)
    return state, out


def series(pcts: Sequence[float], *, start: float = 0.0, every: float = 5.0) -> list[LevelObs]:
    return [pct_obs(at(start + i * every), p) for i, p in enumerate(pcts)]


def kinds(decisions: list[Decision]) -> list[str]:
    return [type(d).__name__ for d in decisions]


def severity(decision: Decision) -> str:
    assert isinstance(decision, Open | Reseverity)
    return decision.severity


# --- a storm: opens once, warning then critical, resolves after keep_firing_for --------------------

#: 15-minute readings at rest, then 5-minute readings while the storm fills the pot and it drains.
STORM_PCTS = [1, 2, 20, 40, 58, 62, 70, 80, 88, 92, 90, 84, 70, 62, 50, 40, 30, 20, 12, 8, 5, 3]
#                 index:  5=first warning reading, 6=confirms, 8=first critical, 14=first below 55


def storm_readings() -> list[LevelObs]:
    rest = [pct_obs(at(-45 + 15 * i), 1.0) for i in range(3)]
    return rest + series(STORM_PCTS)


def test_a_storm_opens_once_after_confirm_readings_then_moves_to_critical_and_back() -> None:
    state, out = run(make_rule(), storm_readings())
    opens = [d for d in out if isinstance(d, Open)]
    assert len(opens) == 1
    opened = opens[0]
    assert opened.at == at(6 * 5)  # the second reading above 60 %, not the first
    assert opened.severity == "warning"
    assert opened.firing is True
    assert opened.value == pytest.approx(70.0, abs=0.1)
    reseverities = [d for d in out if isinstance(d, Reseverity)]
    assert reseverities, "the alert never moved to critical"
    assert reseverities[0].severity == "critical"
    assert reseverities[0].at in (at(8 * 5), at(9 * 5))  # the first (or the confirming) reading above 85 %
    assert reseverities[-1].severity == "warning"  # back down on the way out, within the one alert
    assert all(out.index(opened) < out.index(r) for r in reseverities)
    assert not state.open


def test_a_storm_resolves_only_after_keep_firing_for_below_the_level() -> None:
    _, out = run(make_rule(), storm_readings())
    resolves = [d for d in out if isinstance(d, Resolve)]
    assert len(resolves) == 1
    # 62 % at index 13 still holds the warning (hysteresis 5); 50 % at index 14 is below it, and the
    # alert holds for 30 minutes of readings below the level: the reading at index 20.
    assert resolves[0].at == at(14 * 5 + 30)
    assert out[-1] is resolves[0]


def test_keep_firing_for_holds_a_flood_that_slops_back_over_the_line() -> None:
    pcts = [30, 62, 70, 75, 50, 45, 66, 70, 50, 40, 30, 20, 10, 5, 3, 2]
    _, out = run(make_rule(), series(pcts))
    assert kinds(out) == ["Open", "Resolve"]  # one flood, not two
    assert out[1].at == at(8 * 5 + 30)  # 30 minutes after it went below the second time


def test_a_flood_whose_readings_stop_resolves_on_the_clock_at_keep_firing_for() -> None:
    rule = make_rule()
    state, out = run(rule, series([30, 62, 70, 75, 40]))  # the last reading (minute 20) is below the level
    assert kinds(out) == ["Open"]
    assert state.open
    assert due(rule, state) == at(20 + 30)
    same, nothing = tick(rule, state, at(20 + 29))
    assert nothing == []
    assert same.open
    closed, decisions = tick(rule, state, at(20 + 90))
    assert kinds(decisions) == ["Resolve"]
    assert decisions[0].at == at(20 + 30)  # the data time it became due, not the late tick's
    assert not closed.open
    assert due(rule, closed) is None
    assert tick(rule, closed, at(20 + 200))[1] == []


def test_nothing_is_due_while_the_water_is_in_the_level_or_no_alert_is_open() -> None:
    rule = make_rule()
    assert due(rule, FloodState()) is None
    state, out = run(rule, series([30, 62, 70, 75]))
    assert kinds(out) == ["Open"]
    assert due(rule, state) is None
    assert tick(rule, state, at(24 * 60))[1] == []  # a quiet gully full of water is still flooded
    assert due(rule, run(rule, series([10, 20, 30]))[0]) is None


def test_a_pot_storm_from_the_hydrology_model_opens_once_and_resolves_once() -> None:
    rng = random.Random(7)
    geometry = GullyGeometry(HEIGHT, INVERT, 45 * 60.0, 40.0, HEIGHT - 50.0)
    storm = hydrology.make_storm(rng, 1, 2 * HOUR, 4.0, 25.0)
    pot = Pot(geometry, [storm], 1.0)
    readings, t, peak = [], 0.0, 0.0
    while t < 12 * HOUR:
        excess = pot.excess(t)
        level = HEIGHT - (pot.distance(t, excess) + rng.gauss(0.0, 1.0))
        readings.append(level_obs(T0 + timedelta(seconds=t), level))
        peak = max(peak, 100.0 * (level - INVERT) / SPAN)
        t += 300.0 if excess > 150 else 900.0
    assert peak > 65  # the storm does reach the warning level
    _, out = run(make_rule(critical={"above": 99}), readings)
    assert kinds(out) == ["Open", "Resolve"]


# --- one echo is not water ----------------------------------------------------------------------


def test_a_single_high_echo_never_opens() -> None:
    rule = make_rule()
    readings = [pct_obs(at(15 * i), 1.0 + 0.1 * (i % 3)) for i in range(8)]
    readings[4] = pct_obs(at(60), 97.0)  # a spider on the sensor face
    _, out = run(rule, readings)
    assert out == []


def test_a_single_high_echo_during_a_flood_does_not_make_it_critical() -> None:
    """FloodRule: a single-point spike (one reading far from both neighbours, which agree) is skipped."""
    pcts = [50, 62, 65, 66, 95, 66, 65, 64]
    _, out = run(make_rule(), series(pcts))
    assert kinds(out) == ["Open"]
    assert severity(out[0]) == "warning"


def test_a_jump_faster_than_max_gradient_is_skipped() -> None:
    rule = make_rule(confirm=1, max_gradient_mm_per_min=20)
    # 520 mm -> 940 mm in 15 minutes is 28 mm/min: not water. Then back to rest.
    readings = [pct_obs(at(0), 20.0), pct_obs(at(15), 90.0), pct_obs(at(30), 20.0), pct_obs(at(45), 20.5)]
    _, out = run(rule, readings)
    assert out == []
    # the same reading arriving gently (under 20 mm/min) is water, and confirm=1 opens on it
    _, out = run(rule, [pct_obs(at(0), 20.0), pct_obs(at(30), 62.0)])
    assert kinds(out) == ["Open"]


def test_a_real_step_confirmed_by_the_next_reading_is_believed() -> None:
    rule = make_rule(confirm=1, max_gradient_mm_per_min=20)
    readings = [pct_obs(at(0), 20.0), pct_obs(at(15), 90.0), pct_obs(at(30), 90.2), pct_obs(at(45), 90.4)]
    _, out = run(rule, readings)
    assert kinds(out) == ["Open"]
    assert out[0].at == at(30)
    assert severity(out[0]) == "critical"


def test_only_one_impossible_reading_in_a_row_is_skipped() -> None:
    rule = make_rule(confirm=2, max_gradient_mm_per_min=20)
    readings = [pct_obs(at(0), 20.0), pct_obs(at(15), 90.0), pct_obs(at(30), 90.3), pct_obs(at(45), 91.0)]
    _, out = run(rule, readings)
    assert kinds(out) == ["Open"]
    assert out[0].at in (at(30), at(45))


def test_two_impossible_readings_in_a_row_that_disagree_are_not_a_step() -> None:
    """Only a step the next reading agrees with is believed: 20 %, then 0 % (impossibly fast), then 95 %
    (impossibly fast from the last accepted 20 %, and nowhere near the 0 %) is two bad echoes."""
    rule = make_rule(confirm=1, max_gradient_mm_per_min=20)
    _, out = run(rule, series([20, 0, 95]))
    assert out == []


def test_a_skipped_reading_neither_counts_towards_confirm_nor_breaks_it() -> None:
    rule = make_rule(max_gradient_mm_per_min=20)
    _, out = run(rule, series([55, 62, 0, 64, 66]))
    assert kinds(out) == ["Open"]
    assert out[0].at == at(3 * 5)  # 62 and 64 confirm; the impossible 0 % in between is not water


# --- a parked vehicle: a step from rest onto a flat plateau -------------------------------------


def parked_then_rain(seed: int) -> tuple[list[LevelObs], datetime]:
    """Rest, then something 240 mm above the standing water (0.6 mm echo noise) for 3 hours, then rain
    lifting the surface. Returns the readings and the first reading after the surface starts moving."""
    rng = random.Random(seed)
    readings = [level_obs(at(15 * i), INVERT + rng.gauss(0.0, 1.0)) for i in range(8)]
    plateau = INVERT + 240.0  # 40 % full
    readings += [level_obs(at(120 + 15 * i), plateau + rng.gauss(0.0, 0.6)) for i in range(12)]
    first_moving = at(120 + 15 * 12)
    readings += [level_obs(first_moving + timedelta(minutes=5 * i), plateau + 20.0 * (i + 1)) for i in range(6)]
    return readings, first_moving


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_parked_vehicle_plateau_from_rest_never_opens_while_flat(seed: int) -> None:
    rule = make_rule(warning={"above": 30})
    readings, first_moving = parked_then_rain(seed)
    flat = [r for r in readings if r.at < first_moving]
    _, out = run(rule, flat)
    assert out == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_parked_vehicle_plateau_opens_once_the_surface_moves(seed: int) -> None:
    rule = make_rule(warning={"above": 30})
    readings, first_moving = parked_then_rain(seed)
    _, out = run(rule, readings)
    assert kinds(out) == ["Open"]
    assert first_moving <= out[0].at <= first_moving + timedelta(minutes=5)


def test_a_fast_storm_straight_from_rest_into_the_level_still_opens() -> None:
    rule = make_rule()
    readings = [pct_obs(at(15 * i), 1.0) for i in range(4)] + series([65, 75, 82], start=60)
    _, out = run(rule, readings)
    assert kinds(out) == ["Open"]
    assert out[0].at == at(65)


# --- hysteresis --------------------------------------------------------------------------------


def test_level_at_enters_a_level_above_its_threshold_and_holds_it_within_the_hysteresis() -> None:
    rule = make_rule(hysteresis=5)
    assert level_at(rule, 60.0, None) is None  # `above` is strict
    assert level_at(rule, 60.1, None) == "warning"
    assert level_at(rule, 58.0, None) is None
    assert level_at(rule, 58.0, "warning") == "warning"
    assert level_at(rule, 55.0, "warning") is None
    assert level_at(rule, 82.0, "warning") == "warning"
    assert level_at(rule, 82.0, "critical") == "critical"
    assert level_at(rule, 79.0, "critical") == "warning"
    assert level_at(rule, 58.0, "critical") == "warning"
    assert level_at(rule, 86.0, None) == "critical"


def test_hysteresis_holds_the_level_so_jitter_on_the_line_neither_clears_nor_reopens() -> None:
    rule = make_rule(hysteresis=5)
    pcts = [50, 62, 64, *[58, 57, 59, 56, 58, 57, 59, 56, 58, 57, 59, 56]]  # an hour in the 55..60 band
    state, out = run(rule, series(pcts))
    assert kinds(out) == ["Open"]
    assert state.open
    assert state.level == "warning"
    assert due(rule, state) is None
    state, out = run(rule, series([54, 53, 52, 51, 50, 49, 48], start=len(pcts) * 5), state)
    assert kinds(out) == ["Resolve"]


def test_hysteresis_holds_critical_just_under_its_threshold() -> None:
    _, out = run(make_rule(hysteresis=5), series([70, 88, 90, 83, 82, 84, 81, 83]))
    assert kinds(out) == ["Open"]
    assert severity(out[0]) == "critical"


def test_without_hysteresis_dipping_under_the_line_starts_the_clear() -> None:
    rule = make_rule(hysteresis=0, keep_firing_for="10m")
    _, out = run(rule, series([50, 62, 64, 59, 59, 59, 59]))
    assert kinds(out) == ["Open", "Resolve"]
    assert out[1].at == at(3 * 5 + 10)


# --- what is not a reading of the water ---------------------------------------------------------


def test_no_echo_readings_change_nothing() -> None:
    rule = make_rule()
    clean = series([50, 62, 64, 70, 88, 90, 50, 45, 40, 30, 20, 10, 5, 3])
    _, expected = run(rule, clean)
    assert kinds(expected) == ["Open", "Reseverity", "Resolve"]
    mixed: list[LevelObs] = []
    for obs in clean:
        mixed.append(obs)
        mixed.append(no_echo(obs.at + timedelta(minutes=2)))
    _, out = run(rule, mixed)
    assert out == expected


def test_no_echo_alone_neither_opens_nor_resolves() -> None:
    rule = make_rule()
    state, out = run(rule, series([50, 62, 64]))
    assert kinds(out) == ["Open"]
    state, out = run(rule, [no_echo(at(15 + 15 * i)) for i in range(12)], state)  # 3 hours without an echo
    assert out == []
    assert state.open
    assert due(rule, state) is None


def test_readings_without_geometry_change_nothing() -> None:
    rule = make_rule()
    state, out = run(rule, series([50, 62, 64]))
    assert kinds(out) == ["Open"]
    unknown = [LevelObs(at(15 + 5 * i), 300.0, True, None, None, None, False) for i in range(12)]
    state, out = run(rule, unknown, state)
    assert out == []
    assert state.open


def test_backfilled_older_readings_change_nothing() -> None:
    rule = make_rule()
    state, out = run(rule, series([50, 62, 64, 70]))
    assert kinds(out) == ["Open"]
    for old in [pct_obs(at(-60), 99.0), pct_obs(at(2), 0.0), pct_obs(at(15), 0.0), pct_obs(at(0), 95.0)]:
        again, decisions = observe(rule, state, old)
        assert decisions == []
        assert again == state
    quiet, out = run(rule, series([10, 20, 30]))
    assert out == []
    for old in [pct_obs(at(-30 + 5 * i), 95.0) for i in range(5)]:
        quiet, decisions = observe(rule, quiet, old)
        assert decisions == []
    assert not quiet.open
    assert quiet.count == 0


# --- restart ------------------------------------------------------------------------------------


def mixed_history(seed: int) -> list[LevelObs]:
    """Rest, a parked vehicle, an impossible jump, a storm with warning and critical, no echoes, rest."""
    rng = random.Random(seed)
    readings, first_moving = parked_then_rain(seed)
    t = first_moving + timedelta(minutes=30)
    for pct in [80, 88, 93, 90, 86, 75, 66, 58, 50, 40]:
        readings.append(pct_obs(t, pct + rng.gauss(0.0, 0.2)))
        t += timedelta(minutes=5)
    readings.append(no_echo(t))
    t += timedelta(minutes=5)
    readings.append(pct_obs(t, 99.0))  # impossible from 40 % in 5 minutes at 20 mm/min
    for _ in range(20):
        t += timedelta(minutes=15)
        readings.append(pct_obs(t, 2.0 + rng.gauss(0.0, 0.2)))
    return readings


@pytest.mark.parametrize("seed", [4, 5])
def test_state_round_trips_through_json_mid_series_with_identical_decisions(seed: int) -> None:
    rule = make_rule(warning={"above": 30}, max_gradient_mm_per_min=20)
    readings = mixed_history(seed)
    _, expected = run(rule, readings)
    assert "Open" in kinds(expected) and "Resolve" in kinds(expected)
    for cut in range(1, len(readings)):
        state, first = run(rule, readings[:cut])
        stored = json.loads(json.dumps(state.to_json()))
        restored = FloodState.from_json(stored)
        assert restored == state
        _, rest = run(rule, readings[cut:], restored)
        assert first + rest == expected, f"cut at reading {cut}"


def test_state_round_trips_while_clearing_and_the_clock_resolves_it_the_same() -> None:
    rule = make_rule()
    state, _ = run(rule, series([30, 62, 70, 75, 40]))
    restored = FloodState.from_json(json.loads(json.dumps(state.to_json())))
    assert due(rule, restored) == due(rule, state) == at(50)
    assert tick(rule, restored, at(60)) == tick(rule, state, at(60))


def test_a_default_rules_file_flood_rule_behaves_the_same() -> None:
    parsed = parse_rules("""\
version: 1
rules:
  - {name: gully-flood, category: flood, type: flood, warning: {above: 60}, critical: {above: 85},
     hysteresis: 5, confirm: 2, max_gradient_mm_per_min: 254, keep_firing_for: 30m}
""").rule("gully-flood")
    assert isinstance(parsed, FloodRule)
    assert run(parsed, storm_readings())[1] == run(make_rule(), storm_readings())[1]


def test_three_confirming_readings_when_confirm_is_three() -> None:
    rule = make_rule(confirm=3)
    _, out = run(rule, series([50, 62, 64, 66, 68]))
    assert kinds(out) == ["Open"]
    assert out[0].at == at(3 * 5)
    _, out = run(rule, series([50, 62, 64, 50, 63, 65, 40]))
    assert out == []  # two, a dip, two: never three in a row
