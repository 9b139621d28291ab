"""Level sensors not measuring water: no echo, tilt, stuck, repeated spikes, something over the grate.
One alert per device with its reason; a real storm is water, not a fault."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.decisions import Decision, Open, Resolve
from alerts.evaluators.observations import LevelObs
from alerts.evaluators.sensor_fault import FaultState, due, observe, tick
from alerts.rules import SensorFaultRule
from simulators import hydrology
from simulators.hydrology import HOUR, GullyGeometry, Pot

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
HEIGHT = 1000.0
INVERT = 400.0
SPAN = HEIGHT - INVERT
STANDING = HEIGHT - INVERT  # the distance to the standing water: 600 mm
EVERY = timedelta(minutes=15)


def make_rule(**overrides: Any) -> SensorFaultRule:
    data: dict[str, Any] = {"name": "s", "category": "sensor_fault", "type": "sensor_fault"}
    data.update(overrides)
    return SensorFaultRule.model_validate(data)


def reading(when: datetime, distance: float | None, *, tilted: bool = False, height: float = HEIGHT,
            invert: float = INVERT) -> LevelObs:  # fmt: skip
    if distance is None:
        return LevelObs(when, None, False, None, None, None, tilted)
    level = height - distance
    excess = level - invert
    return LevelObs(when, distance, True, level, excess, 100.0 * excess / (height - invert), tilted)


def run(
    rule: SensorFaultRule, readings: list[LevelObs], state: FaultState | None = None
) -> tuple[FaultState, list[Decision]]:
    state = state or FaultState()
    out: list[Decision] = []
    for obs in readings:
        state, decisions = observe(rule, state, obs)
        out.extend(decisions)
    return state, out


def dry(rng: random.Random, start: datetime, count: int, *, noise: float = 1.0) -> list[LevelObs]:
    """A dry gully at its standing level: ~1 mm echo noise, 15-minute readings."""
    return [reading(start + i * EVERY, STANDING + rng.gauss(0.0, noise)) for i in range(count)]


def after(readings: list[LevelObs]) -> datetime:
    return readings[-1].at + EVERY


def kinds(decisions: list[Decision]) -> list[str]:
    return [type(d).__name__ for d in decisions]


def reason(decision: Decision) -> str:
    assert isinstance(decision, Open)
    assert decision.details is not None
    return str(decision.details["reason"])


# --- no echo ------------------------------------------------------------------------------------


def test_no_echo_for_no_echo_for_opens_with_reason_no_echo_and_resolves_after_clear_after() -> None:
    rule = make_rule()  # no_echo_for 1h, clear_after 1h
    rng = random.Random(1)
    before = dry(rng, T0, 8)
    gone_at = after(before)
    silent = [reading(gone_at + i * EVERY, None) for i in range(8)]  # 2 hours without an echo
    back_at = after(silent)
    normal = dry(rng, back_at, 8)
    _, out = run(rule, before + silent + normal)
    assert kinds(out) == ["Open", "Resolve"]
    opened, resolved = out
    assert isinstance(opened, Open)
    assert opened.at == gone_at + timedelta(hours=1)
    assert reason(opened) == "no echo"
    assert "no echo" in opened.summary
    assert opened.severity == "warning"
    assert resolved.at == back_at + timedelta(hours=1)  # an hour of normal readings


def test_no_echo_shorter_than_no_echo_for_opens_nothing() -> None:
    rng = random.Random(2)
    before = dry(rng, T0, 8)
    silent = [reading(after(before) + i * EVERY, None) for i in range(4)]  # 45 minutes
    _, out = run(make_rule(), before + silent + dry(rng, after(silent), 8))
    assert out == []


def test_no_echo_resolution_waits_for_the_whole_clear_after() -> None:
    rng = random.Random(3)
    before = dry(rng, T0, 4)
    silent = [reading(after(before) + i * EVERY, None) for i in range(6)]
    state, out = run(make_rule(), before + silent)
    assert kinds(out) == ["Open"]
    normal = dry(rng, after(silent), 4)  # 45 minutes of normal readings
    state, out = run(make_rule(), normal, state)
    assert out == []
    assert state.open
    # another gap without an echo starts the clear afresh
    relapse = [reading(after(normal), None)]
    state, out = run(make_rule(), relapse, state)
    assert out == []
    normal = dry(rng, after(relapse), 5)
    state, out = run(make_rule(), normal, state)
    assert kinds(out) == ["Resolve"]
    assert out[0].at == after(relapse) + timedelta(hours=1)


# --- tilt ----------------------------------------------------------------------------------------


def tilted(rng: random.Random, start: datetime, count: int, factor: float = 1.25) -> list[LevelObs]:
    return [reading(start + i * EVERY, (STANDING + rng.gauss(0.0, 1.0)) * factor, tilted=True) for i in range(count)]


def test_tilt_readings_running_open_a_tilted_fault_that_resolves_when_upright() -> None:
    rule = make_rule()  # tilt_readings 2
    rng = random.Random(4)
    before = dry(rng, T0, 8)
    tilt = tilted(rng, after(before), 8)
    upright = dry(rng, after(tilt), 8)
    _, out = run(rule, before + tilt + upright)
    assert kinds(out) == ["Open", "Resolve"]
    assert out[0].at == tilt[1].at
    assert reason(out[0]) == "tilted"
    assert out[1].at == upright[0].at + timedelta(hours=1)


def test_one_tilted_reading_is_not_a_tilt() -> None:
    rng = random.Random(5)
    before = dry(rng, T0, 8)
    tilt = tilted(rng, after(before), 1)
    _, out = run(make_rule(), before + tilt + dry(rng, after(tilt), 8))
    assert out == []


# --- stuck ---------------------------------------------------------------------------------------


def frozen(start: datetime, hours: float, distance: float) -> list[LevelObs]:
    return [reading(start + i * EVERY, distance) for i in range(int(hours * 4) + 1)]


def test_the_same_distance_for_more_than_stuck_min_for_opens_stuck() -> None:
    rule = make_rule()  # stuck_min_for 4h
    rng = random.Random(6)
    before = dry(rng, T0, 16)
    stuck_at = after(before)
    stuck = frozen(stuck_at, 8, 601.37)
    resumed = dry(rng, after(stuck), 8)
    _, out = run(rule, before + stuck + resumed)
    assert kinds(out) == ["Open", "Resolve"]
    assert out[0].at == stuck_at + timedelta(hours=4)
    assert reason(out[0]).startswith("stuck")
    assert out[1].at == resumed[0].at + timedelta(hours=1)


def test_the_same_distance_for_less_than_stuck_min_for_is_not_stuck() -> None:
    rng = random.Random(7)
    before = dry(rng, T0, 16)
    stuck = frozen(after(before), 3.5, 601.37)
    _, out = run(make_rule(), before + stuck + dry(rng, after(stuck), 8))
    assert out == []


@pytest.mark.parametrize("seed", [8, 9, 10])
def test_a_noisy_dry_gully_reporting_whole_millimetres_for_five_days_is_not_stuck(seed: int) -> None:
    rng = random.Random(seed)
    readings = [reading(T0 + i * EVERY, float(round(STANDING + rng.gauss(0.0, 1.0)))) for i in range(5 * 96)]
    _, out = run(make_rule(), readings)
    assert out == []


def coarse_device(start: datetime, days: int, run_hours: float) -> list[LevelObs]:
    """A sensor reporting in 5 mm steps over a still pot: the value holds for `run_hours` at a time."""
    readings = []
    per_run = int(run_hours * 4)
    for i in range(int(days * 96)):
        value = 600.0 if (i // per_run) % 2 == 0 else 605.0
        readings.append(reading(start + i * EVERY, value))
    return readings


def test_a_device_that_normally_repeats_for_hours_learns_a_longer_limit() -> None:
    rule = make_rule()  # stuck_min_for 4h, stuck_factor 3: 3 h runs learn a 9 h limit
    learned = coarse_device(T0, 3, 3.0)
    state, out = run(rule, learned)
    assert out == []
    assert state.longest_run_s >= 3 * 3600 - 1
    # a 7 hour run would be stuck for a device never seen to repeat, but not for this one
    long_run = frozen(after(learned), 7, 610.0)
    moved = [reading(after(long_run) + i * EVERY, 600.0 + 5 * (i % 2)) for i in range(4)]
    _, out = run(rule, long_run + moved, state)
    assert out == []
    _, out = run(rule, frozen(T0, 7, 610.0))
    assert kinds(out) == ["Open"]


def test_a_device_that_normally_repeats_is_still_stuck_past_its_learned_limit() -> None:
    rule = make_rule()
    learned = coarse_device(T0, 3, 3.0)
    state, _ = run(rule, learned)
    stuck_at = after(learned)
    _, out = run(rule, frozen(stuck_at, 12, 610.0), state)
    assert kinds(out) == ["Open"]
    assert reason(out[0]).startswith("stuck")
    assert stuck_at + timedelta(hours=9) <= out[0].at <= stuck_at + timedelta(hours=9, minutes=15)


# --- spikes --------------------------------------------------------------------------------------


def with_spikes(rng: random.Random, count: int, spikes_at: list[int], *, up: bool = False) -> list[LevelObs]:
    """A dry gully whose reading `i in spikes_at` is one echo far off (+400..1500 mm of distance: a
    reflection from the pot wall; with `up`, a spider in front of the sensor face)."""
    out = dry(rng, T0, count)
    for i in spikes_at:
        off = rng.uniform(400.0, 1500.0) if not up else -rng.uniform(250.0, 400.0)
        distance = out[i].distance_mm
        assert distance is not None
        out[i] = reading(out[i].at, distance + off)
    return out


def test_three_spikes_within_a_day_open_and_one_does_not() -> None:
    rule = make_rule()  # spikes 3 within 24h
    rng = random.Random(11)
    readings = with_spikes(rng, 96 * 2, [20, 40, 60])
    _, out = run(rule, readings)
    assert kinds(out) == ["Open", "Resolve"]
    assert out[0].at in (readings[60].at, readings[61].at)  # the third spike (or the reading back from it)
    assert "spikes" in reason(out[0])
    _, out = run(rule, with_spikes(random.Random(12), 96 * 2, [40]))
    assert out == []


def test_three_spikes_spread_over_three_days_do_not_open() -> None:
    rng = random.Random(13)
    _, out = run(make_rule(), with_spikes(rng, 96 * 4, [20, 20 + 100, 20 + 200]))  # 25 hours apart
    assert out == []


def test_three_upward_single_point_spikes_within_a_day_open() -> None:
    """A spike is one reading far off with the next back, either way: a short echo counts too."""
    rng = random.Random(14)
    readings = with_spikes(rng, 96 * 2, [20, 40, 60], up=True)
    _, out = run(make_rule(), readings)
    assert kinds(out)[:1] == ["Open"]
    assert "spikes" in reason(out[0])


# --- something over the grate ----------------------------------------------------------------------


def vehicle(rng: random.Random, start: datetime, hours: float, above_mm: float) -> list[LevelObs]:
    """A flat plateau `above_mm` over the standing water (0.6 mm noise): a vehicle parked on the grate."""
    return [reading(start + i * EVERY, STANDING - above_mm + rng.gauss(0.0, 0.6)) for i in range(int(hours * 4))]


@pytest.mark.parametrize("above_mm", [150.0, 220.0, 300.0])
def test_a_parked_vehicle_plateau_opens_an_obstruction_and_resolves_when_it_leaves(above_mm: float) -> None:
    rule = make_rule()  # obstruction_for 45m
    rng = random.Random(int(above_mm))
    before = dry(rng, T0, 8)
    parked_at = after(before)
    plateau = vehicle(rng, parked_at, 3, above_mm)
    left = dry(rng, after(plateau), 8)
    _, out = run(rule, before + plateau + left)
    assert kinds(out) == ["Open", "Resolve"]
    assert out[0].at == parked_at + timedelta(minutes=45)
    assert "over the grate" in reason(out[0])
    assert out[1].at == left[0].at + timedelta(hours=1)


def test_a_vehicle_parked_for_less_than_obstruction_for_opens_nothing() -> None:
    rng = random.Random(15)
    before = dry(rng, T0, 8)
    plateau = vehicle(rng, after(before), 0.5, 200.0)
    _, out = run(make_rule(), before + plateau + dry(rng, after(plateau), 8))
    assert out == []


# --- a real storm is water -------------------------------------------------------------------------


def storm_series(seed: int) -> list[LevelObs]:
    """Three days of a gully drawn the way simulators/gully.py draws one, with three storms: a rise and an
    exponential recession, 5-minute readings while the water is high, ~1 mm echo noise."""
    rng = random.Random(seed)
    height = rng.uniform(900.0, 1300.0)
    g = GullyGeometry(height, rng.uniform(350.0, 600.0), rng.uniform(10.0, 60.0) * 60.0, rng.uniform(15.0, 40.0),
                      height - 320.0)  # fmt: skip
    storms = [hydrology.make_storm(rng, k + 1, 6 * HOUR + k * 24 * HOUR, rng.uniform(1.0, 5.0), 25.0) for k in range(3)]
    pot = Pot(g, storms, rng.uniform(0.7, 1.3))
    out, t = [], 0.0
    while t < 3 * 24 * HOUR:
        excess = pot.excess(t)
        distance = pot.distance(t, excess) + rng.gauss(0.0, 1.0)
        out.append(reading(T0 + timedelta(seconds=t), distance, height=g.sensor_height_mm, invert=g.outlet_invert_mm))
        t += (300.0 if excess > 150 else 900.0) + rng.uniform(-15.0, 15.0)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_a_real_storm_opens_nothing(seed: int) -> None:
    readings = storm_series(seed)
    assert max(r.fill_pct for r in readings if r.fill_pct is not None) > 10  # there was water
    _, out = run(make_rule(), readings)
    assert out == []


def test_a_fast_storm_from_rest_is_water_not_an_obstruction() -> None:
    rng = random.Random(16)
    before = dry(rng, T0, 8)
    start = after(before)
    excess = [0, 250, 320, 300, 260, 220, 185, 155, 130, 110, 92, 77, 65, 54, 45, 38, 32, 27, 22, 18, 15, 12, 10]
    storm = [
        reading(start + i * timedelta(minutes=5), STANDING - e + rng.gauss(0.0, 1.0)) for i, e in enumerate(excess)
    ]
    _, out = run(make_rule(), before + storm + dry(rng, after(storm), 16))
    assert out == []


# --- one alert per device --------------------------------------------------------------------------


def test_one_alert_per_device_even_with_two_reasons() -> None:
    rule = make_rule()
    rng = random.Random(17)
    before = dry(rng, T0, 8)
    tilt = tilted(rng, after(before), 6)
    silent = [reading(after(tilt) + i * EVERY, None) for i in range(8)]  # tilted, then no echo too
    more_tilt = tilted(rng, after(silent), 4)
    upright = dry(rng, after(more_tilt), 8)
    _, out = run(rule, before + tilt + silent + more_tilt + upright)
    assert kinds(out) == ["Open", "Resolve"]
    assert reason(out[0]) == "tilted"
    assert out[1].at == upright[0].at + timedelta(hours=1)


def test_a_stuck_and_tilted_sensor_is_one_alert() -> None:
    rng = random.Random(18)
    before = dry(rng, T0, 8)
    stuck_tilted = [reading(after(before) + i * EVERY, 750.0, tilted=True) for i in range(30)]
    _, out = run(make_rule(), before + stuck_tilted)
    assert kinds(out) == ["Open"]


# --- data, not the clock; restart ----------------------------------------------------------------------


def test_backfilled_older_readings_change_nothing() -> None:
    rng = random.Random(19)
    readings = dry(rng, T0, 8)
    state, _ = run(make_rule(), readings)
    for old in [reading(T0 - EVERY, None), reading(T0, 50.0), reading(readings[-1].at, None)]:
        again, decisions = observe(make_rule(), state, old)
        assert decisions == []
        assert again == state


def test_the_clock_decides_nothing() -> None:
    rule = make_rule()
    rng = random.Random(20)
    before = dry(rng, T0, 4)
    state, out = run(rule, before + [reading(after(before) + i * EVERY, None) for i in range(6)])
    assert kinds(out) == ["Open"]
    assert due(rule, state) is None
    assert tick(rule, state, T0 + timedelta(days=3)) == (state, [])


def everything(rng: random.Random) -> list[LevelObs]:
    out = dry(rng, T0, 12)
    out += vehicle(rng, after(out), 2, 200.0)
    out += dry(rng, after(out), 8)
    out += [reading(after(out) + i * EVERY, None) for i in range(6)]
    out += dry(rng, after(out), 8)
    out += frozen(after(out), 5, 598.21)
    out += dry(rng, after(out), 8)
    spikes = dry(rng, after(out), 40)
    for i in (3, 15, 30):
        spikes[i] = reading(spikes[i].at, 600.0 + rng.uniform(400.0, 1500.0))
    out += spikes
    out += tilted(rng, after(out), 4)
    return out + dry(rng, after(out), 8)


def test_state_round_trips_through_json_mid_series_with_identical_decisions() -> None:
    rule = make_rule()
    readings = everything(random.Random(21))
    _, expected = run(rule, readings)
    assert kinds(expected).count("Open") >= 3
    for cut in range(1, len(readings), 3):
        state, first = run(rule, readings[:cut])
        restored = FaultState.from_json(json.loads(json.dumps(state.to_json())))
        assert restored == state
        _, rest = run(rule, readings[cut:], restored)
        assert first + rest == expected, f"cut at reading {cut}"


def test_every_resolve_follows_an_open() -> None:
    _, out = run(make_rule(), everything(random.Random(22)))
    depth = 0
    for d in out:
        depth += 1 if isinstance(d, Open) else -1 if isinstance(d, Resolve) else 0
        assert depth in (0, 1)
