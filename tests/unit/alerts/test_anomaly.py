"""Readings far outside a device's own normal: a streaming median / MAD, learned, robust, restartable."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.decisions import Decision, Open, Resolve
from alerts.evaluators.anomaly import AnomalyState, Robust, due, observe, tick
from alerts.rules import AnomalyRule

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
EVERY = timedelta(minutes=15)
BASE = 500.0  # a gully's standing level, mm


def make_rule(**overrides: Any) -> AnomalyRule:
    data: dict[str, Any] = {"name": "a", "category": "anomaly", "type": "anomaly", "metric": "level_mm"}
    data.update(overrides)
    return AnomalyRule.model_validate(data)


def at(i: int) -> datetime:
    return T0 + i * EVERY


def noisy(rng: random.Random, count: int, *, start: int = 0, sd: float = 1.0) -> list[tuple[datetime, float]]:
    return [(at(start + i), BASE + rng.gauss(0.0, sd)) for i in range(count)]


def run(
    rule: AnomalyRule, values: Sequence[tuple[datetime, float | None]], state: AnomalyState | None = None
) -> tuple[AnomalyState, list[Decision]]:
    state = state or AnomalyState()
    out: list[Decision] = []
    for when, x in values:
        state, decisions = observe(rule, state, when, x)
        out.extend(decisions)
    return state, out


def kinds(decisions: list[Decision]) -> list[str]:
    return [type(d).__name__ for d in decisions]


def learned(rule: AnomalyRule, seed: int = 1) -> tuple[AnomalyState, int]:
    """A state that has seen two learning periods of a quiet gully; and the next reading's index."""
    count = 2 * rule.learn_readings
    state, out = run(rule, noisy(random.Random(seed), count))
    assert out == []
    return state, count


# --- quiet, then far -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_stable_noisy_series_opens_nothing_after_learning(seed: int) -> None:
    rule = make_rule()
    _, out = run(rule, noisy(random.Random(seed), 96 * 6))
    assert out == []


def test_a_value_far_away_opens_once() -> None:
    rule = make_rule()
    state, n = learned(rule)
    rng = random.Random(9)
    values: list[tuple[datetime, float | None]] = [(at(n), BASE + 300.0)]
    values += noisy(rng, 12, start=n + 1)
    _, out = run(rule, values, state)
    opens = [d for d in out if isinstance(d, Open)]
    assert len(opens) == 1
    opened = opens[0]
    assert opened.at == at(n)
    assert opened.value == pytest.approx(BASE + 300.0)
    assert opened.severity == "info"
    assert opened.firing is True
    assert opened.details is not None
    assert opened.details["median"] == pytest.approx(BASE, abs=2.0)


def test_a_value_that_stays_far_away_is_still_one_alert() -> None:
    rule = make_rule()
    state, n = learned(rule)
    values: list[tuple[datetime, float | None]] = [(at(n + i), BASE + 300.0 + i) for i in range(8)]
    _, out = run(rule, values, state)
    assert kinds(out) == ["Open"]


def test_a_far_value_resolves_after_clear_after_of_ordinary_readings() -> None:
    rule = make_rule(rate=False)  # the value alone: the first reading back is ordinary
    state, n = learned(rule)
    rng = random.Random(10)
    far = [(at(n + i), BASE + 300.0) for i in range(3)]
    back = noisy(rng, 8, start=n + 3)
    state, out = run(rule, far + back, state)
    assert kinds(out) == ["Open", "Resolve"]
    assert out[1].at == at(n + 3) + timedelta(hours=1)
    assert not state.open


def test_resolution_with_rate_waits_at_least_clear_after() -> None:
    rule = make_rule()
    state, n = learned(rule)
    rng = random.Random(11)
    values = [(at(n), BASE + 300.0), *noisy(rng, 12, start=n + 1)]
    _, out = run(rule, values, state)
    assert kinds(out) == ["Open", "Resolve"]
    first_back = at(n + 1)
    assert first_back + timedelta(hours=1) <= out[1].at <= first_back + timedelta(hours=1) + EVERY


def test_a_far_value_in_the_middle_of_the_clear_restarts_it() -> None:
    rule = make_rule(rate=False)
    state, n = learned(rule)
    rng = random.Random(12)
    values = [(at(n), BASE + 300.0), *noisy(rng, 3, start=n + 1), (at(n + 4), BASE - 300.0)]
    values += noisy(rng, 6, start=n + 5)
    _, out = run(rule, values, state)
    assert kinds(out) == ["Open", "Resolve"]
    assert out[1].at == at(n + 5) + timedelta(hours=1)


def test_a_far_value_below_the_normal_opens_too() -> None:
    rule = make_rule()
    state, n = learned(rule)
    _, out = run(rule, [(at(n), BASE - 200.0)], state)
    assert kinds(out) == ["Open"]


def test_min_scale_keeps_a_dead_quiet_device_from_opening_on_a_few_millimetres() -> None:
    rule = make_rule(rate=False)  # k 8 x min_scale 5 = 40 mm
    state, n = learned(rule)
    _, out = run(rule, [(at(n + i), BASE + 30.0) for i in range(4)], state)
    assert out == []
    _, out = run(rule, [(at(n), BASE + 45.0)], state)
    assert kinds(out) == ["Open"]


def test_a_rate_far_faster_than_normal_opens_even_inside_the_value_range() -> None:
    rule = make_rule(min_scale=50.0)  # the value may wander 400 mm, the rate floor is 50/15 mm/min
    state, n = learned(rule)
    # 300 mm in one minute: within 8 x 50 mm of the median, but 300 mm/min
    _, out = run(rule, [(at(n) - timedelta(minutes=14), BASE + 300.0)], state)
    assert kinds(out) == ["Open"]
    _, out = run(make_rule(min_scale=50.0, rate=False), [(at(n) - timedelta(minutes=14), BASE + 300.0)], state)
    assert out == []


# --- learning --------------------------------------------------------------------------------------


@pytest.mark.parametrize("position", [1, 10, 50, 95])
def test_nothing_opens_during_the_learning_readings(position: int) -> None:
    rule = make_rule()  # learn_readings 96
    rng = random.Random(position)
    values: list[tuple[datetime, float | None]] = list(noisy(rng, 96))
    values[position] = (values[position][0], BASE + 1000.0)
    _, out = run(rule, values)
    assert out == []


def test_the_first_reading_after_learn_readings_can_open() -> None:
    rule = make_rule(learn_readings=20)
    rng = random.Random(13)
    values: list[tuple[datetime, float | None]] = [*noisy(rng, 20), (at(20), BASE + 500.0)]
    _, out = run(rule, values)
    assert kinds(out) == ["Open"]
    assert out[0].at == at(20)
    values = [*noisy(random.Random(13), 19), (at(19), BASE + 500.0)]
    _, out = run(rule, values)
    assert out == []


@pytest.mark.parametrize("seed", range(6))
def test_a_few_outliers_while_learning_do_not_spoil_the_baseline(seed: int) -> None:
    rule = make_rule()
    rng = random.Random(seed)
    learning: list[tuple[datetime, float | None]] = list(noisy(rng, 96))
    for i in {1, 2, *rng.sample(range(3, 96), 3)}:
        learning[i] = (learning[i][0], BASE + rng.choice([-1, 1]) * rng.uniform(300.0, 800.0))
    state, out = run(rule, learning)
    assert out == []
    assert state.value.median == pytest.approx(BASE, abs=3.0)
    assert 1.4826 * state.value.mad < 10.0
    quiet, out = run(rule, noisy(rng, 96 * 3, start=96), state)
    assert out == []
    _, out = run(rule, [(at(96 * 4), BASE + 300.0)], quiet)
    assert kinds(out) == ["Open"]


def test_a_far_value_teaches_the_baseline_only_a_little() -> None:
    rule = make_rule()
    state, n = learned(rule)
    after, _ = run(rule, [(at(n + i), BASE + 1000.0) for i in range(3)], state)
    assert abs(after.value.median - state.value.median) < 20.0


# --- robust median ---------------------------------------------------------------------------------


def test_robust_tracks_the_median_and_spread_of_a_series_with_outliers() -> None:
    rng = random.Random(14)
    est = Robust()
    for i in range(2000):
        x = 100.0 + rng.gauss(0.0, 4.0)
        if i % 25 == 7:
            x += 1000.0
        est = est.update(x, floor=1.0)
    assert est.n == 2000
    assert est.median == pytest.approx(100.0, abs=2.0)
    assert 1.4826 * est.mad == pytest.approx(4.0, rel=0.5)  # a normal's MAD x 1.4826 is its sd
    assert est.scale(1.0) == pytest.approx(1.4826 * est.mad)
    assert est.scale(50.0) == 50.0


def test_robust_starts_at_the_first_value() -> None:
    est = Robust().update(42.0, floor=5.0)
    assert (est.n, est.median, est.mad) == (1, 42.0, 0.0)


# --- not evidence; restart ------------------------------------------------------------------------


def test_missing_values_and_backfill_change_nothing() -> None:
    rule = make_rule()
    state, n = learned(rule)
    for when, x in [(at(n), None), (at(n - 1), BASE + 900.0), (at(3), BASE - 900.0)]:
        again, decisions = observe(rule, state, when, x)
        assert decisions == []
        assert again == state


def test_the_clock_decides_nothing() -> None:
    rule = make_rule()
    state, n = learned(rule)
    state, out = run(rule, [(at(n), BASE + 300.0)], state)
    assert kinds(out) == ["Open"]
    assert due(rule, state) is None
    assert tick(rule, state, at(n + 1000)) == (state, [])


def test_state_round_trips_through_json_mid_series_with_identical_decisions() -> None:
    rule = make_rule(learn_readings=40)
    rng = random.Random(15)
    values: list[tuple[datetime, float | None]] = list(noisy(rng, 200))
    for i, jump in [(5, 400.0), (60, 300.0), (61, 310.0), (120, -250.0), (170, 500.0)]:
        values[i] = (values[i][0], BASE + jump)
    values[90] = (values[90][0], None)
    _, expected = run(rule, values)
    assert kinds(expected).count("Open") >= 2
    assert "Resolve" in kinds(expected)
    for cut in range(1, len(values), 7):
        state, first = run(rule, values[:cut])
        restored = AnomalyState.from_json(json.loads(json.dumps(state.to_json())))
        assert restored == state
        _, rest = run(rule, values[cut:], restored)
        assert first + rest == expected, f"cut at reading {cut}"


def test_every_resolve_follows_an_open() -> None:
    rule = make_rule(learn_readings=40)
    rng = random.Random(16)
    values: list[tuple[datetime, float | None]] = list(noisy(rng, 300))
    for i in rng.sample(range(40, 300), 12):
        values[i] = (values[i][0], BASE + rng.uniform(200.0, 600.0))
    _, out = run(rule, values)
    depth = 0
    for d in out:
        depth += 1 if isinstance(d, Open) else -1 if isinstance(d, Resolve) else 0
        assert depth in (0, 1)
