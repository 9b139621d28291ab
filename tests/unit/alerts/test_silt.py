"""The silt evaluator on hand-made gullies: a steady creep opens, storms, noise and a blocked gully
full of water do not, a cleanse resolves, and a restart (state through JSON) forgets nothing."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from alerts.decisions import Decision, Open, Resolve
from alerts.evaluators import silt
from alerts.evaluators.observations import LevelObs
from alerts.evaluators.silt import SiltState
from alerts.rules import parse_rules

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a UTC midnight
DAY = 1440.0
RULE: Any = parse_rules("""\
version: 1
rules:
  - {name: silt, category: silt, type: silt}
""").rule("silt")


def storm(at: float, minutes: float, peak: float) -> Callable[[float], float]:
    """Inflow (mm/min) of a triangular storm from minute `at`, peaking a third of the way in."""

    def inflow(m: float) -> float:
        if not at <= m < at + minutes:
            return 0.0
        top = at + minutes / 3
        return peak * ((m - at) / (top - at) if m < top else (at + minutes - m) / (at + minutes - top))

    return inflow


def gully(
    seed: int,
    days: float,
    *,
    tau: float = 20.0,
    storms: Sequence[Callable[[float], float]] = (),
    silt_mm: Callable[[float], float] = lambda m: 0.0,
    noise: float = 1.0,
) -> list[LevelObs]:
    """Readings every 15 minutes of a linear reservoir (drain time `tau` minutes) fed by `storms`; the
    sensor sees the higher of the water and the silt (`silt_mm` at each minute), with echo noise."""
    rng = random.Random(seed)
    x, out, decay = 0.0, [], math.exp(-1.0 / tau)
    for m in range(int(days * DAY)):
        x = x * decay + sum(s(m) for s in storms) * tau * (1.0 - decay)
        if m % 15 == 0:
            value = max(x, silt_mm(m)) + rng.gauss(0.0, noise)
            out.append(LevelObs(T0 + timedelta(minutes=m), None, True, None, value, None))
    return out


def creep(start_day: float, mm_per_day: float, cleansed_day: float | None = None) -> Callable[[float], float]:
    def level(m: float) -> float:
        if m < start_day * DAY or (cleansed_day is not None and m >= cleansed_day * DAY):
            return 0.0
        return (m - start_day * DAY) / DAY * mm_per_day

    return level


def run(readings: Sequence[LevelObs], state: SiltState | None = None) -> tuple[SiltState, list[Decision]]:
    state, out = state or SiltState(), []
    for reading in readings:
        state, decisions = silt.observe(RULE, state, reading)
        out.extend(decisions)
    return state, out


def storms_every(days: int, step: int, seed: int) -> list[Callable[[float], float]]:
    rng = random.Random(seed)
    return [
        storm(DAY * k + rng.uniform(0, 1200), rng.uniform(60, 240), rng.uniform(2, 10)) for k in range(1, days, step)
    ]


def test_a_6mm_a_day_creep_opens_a_few_days_in_at_the_end_of_the_day() -> None:
    state, out = run(gully(1, 14, storms=storms_every(14, 4, 1), silt_mm=creep(3, 6.0)))
    [opened] = out
    assert isinstance(opened, Open)
    assert opened.severity == RULE.severity == "info" and opened.firing
    assert opened.at.time() == time(0) and T0 + timedelta(days=8) <= opened.at <= T0 + timedelta(days=10)
    details = opened.details or {}
    assert opened.value is not None and 5.0 <= opened.value <= 7.0
    assert details["rise_mm"] >= RULE.min_rise_mm and abs(details["clean_mm"]) < 2
    assert len(details["days"]) >= RULE.min_days
    assert state.open and state.alerted


@pytest.mark.parametrize("seed", range(3))
def test_a_flat_noisy_gully_with_storms_never_opens(seed: int) -> None:
    _, out = run(gully(seed, 30, tau=random.Random(seed).uniform(10, 50), storms=storms_every(30, 2, seed)))
    assert out == []


@pytest.mark.parametrize("tau_hours", [24, 48, 96])
def test_a_blocked_gully_full_for_days_after_storms_is_not_silt(tau_hours: float) -> None:
    storms = [storm(DAY * k + 600, 120, 4.0) for k in (4, 11, 15, 22)]
    state, out = run(gully(2, 30, tau=tau_hours * 60, storms=storms))
    assert out == []
    assert max(v for _, v in state.levels) > RULE.min_rise_mm  # it did stand full


def test_a_cleanse_resolves_and_the_clean_level_is_learned_afresh() -> None:
    readings = gully(3, 24, storms=storms_every(24, 5, 3), silt_mm=creep(3, 6.0, cleansed_day=12.5))
    state, out = run(readings)
    assert [type(d) for d in out] == [Open, Resolve]
    resolved = out[1]
    assert isinstance(resolved, Resolve) and resolved.at == T0 + timedelta(days=13)  # the end of the cleanse day
    assert "within" in resolved.reason
    assert not state.open and not state.alerted and state.clean is not None and abs(state.clean) < 2


def test_resolved_by_a_person_it_relearns_clean_rather_than_reopening_at_once() -> None:
    readings = gully(4, 20, silt_mm=creep(3, 6.0))
    cut = next(i for i, r in enumerate(readings) if r.at >= T0 + timedelta(days=9, hours=12))
    state, out = run(readings[:cut])
    assert [type(d) for d in out] == [Open]
    state, out = run(readings[cut:], replace(state, open=False))  # what the engine does after a person resolves
    [reopened] = out  # only once the level has risen min_rise_mm above the level it was resolved at
    assert isinstance(reopened, Open) and reopened.at >= T0 + timedelta(days=15)
    assert (reopened.details or {})["clean_mm"] > 30


def test_a_restart_mid_series_forgets_nothing() -> None:
    readings = gully(5, 24, storms=storms_every(24, 3, 5), silt_mm=creep(3, 6.0, cleansed_day=15.5))
    straight, expected = run(readings)
    state, out = SiltState(), []
    for reading in readings:  # through JSON at every reading, and a clock pass between some of them
        state = SiltState.from_json(json.loads(json.dumps(state.to_json())))
        due = silt.due(RULE, state)
        if due is not None and due <= reading.at:
            state, decisions = silt.tick(RULE, state, reading.at)
            out.extend(decisions)
        state, decisions = silt.observe(RULE, state, reading)
        out.extend(decisions)
    assert out == expected and [type(d) for d in out] == [Open, Resolve]
    assert state == straight


def test_state_json_stays_small_over_a_month_and_reads_back_from_nothing() -> None:
    state, biggest = SiltState(), 0
    for reading in gully(6, 32, tau=600, storms=storms_every(32, 2, 6), silt_mm=creep(2, 8.0), noise=3.0):
        state, _ = silt.observe(RULE, state, reading)
        biggest = max(biggest, len(json.dumps(state.to_json())))
    assert biggest < 4096 and len(state.levels) == silt.KEEP_DAYS
    assert SiltState.from_json({}) == SiltState()
    assert SiltState.from_json({"open": True, "clean": 3}) == SiltState(open=True, clean=3.0)


def test_due_closes_the_day_on_the_clock_with_the_same_decision_as_the_next_reading() -> None:
    readings = gully(7, 10, silt_mm=creep(1, 10.0))
    [opened] = run(readings)[1]
    closing = next(i for i, r in enumerate(readings) if r.at >= opened.at)
    state, out = run(readings[:closing])
    assert out == []  # the day is collected but not closed yet
    due = silt.due(RULE, state)
    assert due == opened.at + silt.GRACE
    assert silt.tick(RULE, state, due - timedelta(seconds=1)) == (state, [])
    ticked, by_clock = silt.tick(RULE, state, due)
    _, by_reading = silt.observe(RULE, state, readings[closing])
    assert by_clock == by_reading == [opened]
    assert silt.due(RULE, ticked) is None and silt.due(RULE, SiltState()) is None


def test_the_dry_level_is_the_days_low_quantile_even_when_the_day_spans_many_mm() -> None:
    state = SiltState()
    for i in range(100):  # 0..99 mm, more distinct mm than the day keeps bins for
        state, _ = silt.observe(RULE, state, LevelObs(T0 + timedelta(minutes=i), None, True, None, 99 - i + 0.3, None))
    assert len(state.bins) == silt.MAX_BINS and state.over == 100 - silt.MAX_BINS
    assert silt.dry_level(RULE, state) == 9.5  # the 10th of 100, in its 1 mm bin


def test_no_echo_and_tilted_readings_are_skipped_and_backfill_changes_nothing() -> None:
    state, _ = run(gully(8, 1))
    later = T0 + timedelta(days=1, minutes=5)
    assert silt.observe(RULE, state, LevelObs(later, None, False, None, None, None)) == (replace(state, last=later), [])
    tilted = LevelObs(later + timedelta(minutes=1), None, True, None, -300.0, None, tilted=True)
    assert silt.observe(RULE, state, tilted)[0].bins == state.bins
    assert silt.observe(RULE, state, LevelObs(T0, None, True, None, 500.0, None)) == (state, [])


def test_theil_sen_shrugs_off_an_odd_day() -> None:
    assert silt.theil_sen([(0, 0), (1, 2), (2, 4), (3, 90), (4, 8)]) == 2.0
    assert silt.theil_sen([(0, 5)]) == 0.0
