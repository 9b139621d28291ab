"""The blockage evaluator on hand-made gullies: slow recessions open, clean storms and faults do not,
a later normal recession resolves, and a restart (state through JSON) forgets nothing."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.decisions import Decision, Open, Resolve
from alerts.evaluators import blockage
from alerts.evaluators.blockage import BlockageState
from alerts.evaluators.observations import LevelObs
from alerts.rules import parse_rules

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
RULE: Any = parse_rules("""\
version: 1
rules:
  - {name: blockage, category: blockage, type: blockage}
""").rule("blockage")


@dataclass(frozen=True)
class Storm:
    """Rain on the catchment from `at` (minutes after T0) for `minutes`, a triangle peaking a third of
    the way in at `peak` mm/min of inflow to the pot."""

    at: float
    minutes: float
    peak: float

    def inflow(self, m: float) -> float:
        if not self.at <= m < self.at + self.minutes:
            return 0.0
        top = self.at + self.minutes / 3
        if m < top:
            return self.peak * (m - self.at) / (top - self.at)
        return self.peak * (self.at + self.minutes - m) / (self.at + self.minutes - top)


Tau = float | Callable[[float], float]


def gully(
    seed: int,
    days: float,
    tau: Tau,
    storms: Sequence[Storm],
    *,
    every: float = 15.0,
    noise: float = 1.0,
    fault: Callable[[float, float], float | None] | None = None,
) -> list[LevelObs]:
    """Readings every `every` minutes of a linear reservoir (drain time `tau` minutes, or a function of
    the minute) fed by `storms`, with gaussian echo noise; `fault(minute, excess)` may replace a reading."""
    rng = random.Random(seed)
    x, out = 0.0, []
    for m in range(int(days * 1440)):
        drain = tau(m) if callable(tau) else tau
        q = sum(s.inflow(m) for s in storms)
        decay = math.exp(-1.0 / drain)
        x = x * decay + q * drain * (1.0 - decay)
        if m % every == 0:
            value = x + rng.gauss(0.0, noise)
            out.append(obs(m, fault(m, value) if fault is not None else value))
    return out


def obs(minute: float, excess: float | None) -> LevelObs:
    return LevelObs(T0 + timedelta(minutes=minute), None, excess is not None, None, excess, None)


def run(readings: Sequence[LevelObs], state: BlockageState | None = None) -> tuple[BlockageState, list[Decision]]:
    state, out = state or BlockageState(), []
    for reading in readings:
        state, decisions = blockage.observe(RULE, state, reading)
        out.extend(decisions)
    return state, out


def opens(decisions: Sequence[Decision]) -> list[Open]:
    return [d for d in decisions if isinstance(d, Open)]


DAY = 1440.0
CLEAN = [Storm(DAY * k + 600, 90, 6.0) for k in range(3)]  # three morning storms on a clear gully


def test_a_slow_recession_after_clean_ones_opens_once_at_the_reading_that_completes_the_evidence() -> None:
    slow = Storm(DAY * 3 + 600, 90, 6.0)
    readings = gully(1, 6, lambda m: 20.0 if m < DAY * 3 else 400.0, [*CLEAN, slow])
    state, out = run(readings)
    [opened] = opens(out)
    assert not [d for d in out if isinstance(d, Resolve)]
    details = opened.details or {}
    assert opened.severity == RULE.severity and opened.firing
    assert details["learned_from"] == 3 and 15 <= details["learned_drain_time_min"] <= 60
    assert opened.value is not None and opened.value > details["threshold_min"]
    # judged as soon as the recession had lasted HOLD x the threshold: the first reading past it
    start = datetime.fromisoformat(details["recession_start"])
    hold = timedelta(minutes=blockage.HOLD * details["threshold_min"])
    assert start >= T0 + timedelta(minutes=slow.at)
    assert start + hold <= opened.at < start + hold + timedelta(minutes=15)
    assert opened.at in {r.at for r in readings}
    assert "not draining" in opened.summary and state.open
    assert len(state.taus) == 3  # the slow one is not learned


@pytest.mark.parametrize("seed", range(4))
def test_clean_storms_with_noise_never_open(seed: int) -> None:
    rng = random.Random(seed)
    storms = [
        Storm(DAY * k + rng.uniform(0, 1200), rng.uniform(45, 240), rng.uniform(1.0, 12.0)) for k in range(0, 28, 3)
    ]
    state, out = run(gully(seed, 30, rng.uniform(10, 45), storms))
    assert opens(out) == []
    assert len(state.taus) >= RULE.learn_from


def test_cold_start_opens_on_a_very_slow_first_recession() -> None:
    _, out = run(gully(2, 2, 600.0, [Storm(300, 60, 5.0)]))
    [opened] = opens(out)
    details = opened.details or {}
    assert details["learned_drain_time_min"] is None and details["learned_from"] == 0
    assert details["threshold_min"] == RULE.cold_start_drain_time.total_seconds() / 60
    assert opened.value is not None and opened.value > 300
    assert "no normal learned yet" in opened.summary


def test_a_gully_blocked_from_its_first_storm_never_learns_blockage_as_normal() -> None:
    storms = [Storm(DAY * k + 300, 60, 5.0) for k in range(0, 17, 3)]
    readings = gully(3, 17, 400.0, storms)
    cut = next(i for i, r in enumerate(readings) if r.at >= T0 + timedelta(days=14))
    state, out = run(readings[:cut])
    assert len(opens(out)) == 1  # one alert, held open through every slow storm after
    assert state.taus == () and state.open
    # a person resolves it (the engine sets open False): the next slow storm opens it again
    state, out = run(readings[cut:], replace(state, open=False))
    assert len(opens(out)) == 1 and state.taus == ()


def test_a_later_normal_recession_resolves() -> None:
    blocked = Storm(DAY * 3 + 600, 90, 6.0)
    after = Storm(DAY * 5 + 600, 90, 6.0)  # cleansed on day 4
    readings = gully(5, 7, lambda m: 400.0 if DAY * 3 <= m < DAY * 4.5 else 20.0, [*CLEAN, blocked, after])
    state, out = run(readings)
    assert [type(d) for d in out] == [Open, Resolve]
    resolved = out[1]
    assert isinstance(resolved, Resolve) and "draining again" in resolved.reason
    assert T0 + timedelta(minutes=after.at) < resolved.at < T0 + timedelta(minutes=after.at + 360)
    assert not state.open and len(state.taus) == 4


def test_back_to_rest_in_a_normal_time_resolves_too() -> None:
    blocked = Storm(DAY * 3 + 600, 90, 6.0)
    quick = Storm(DAY * 5 + 600, 30, 12.0)  # a sharp shower: in and out of the pot in a few readings
    readings = gully(6, 6, lambda m: 400.0 if DAY * 3 <= m < DAY * 4.5 else 10.0, [*CLEAN, blocked, quick])
    _, out = run(readings)
    assert [type(d) for d in out] == [Open, Resolve]
    assert isinstance(out[1], Resolve) and out[1].reason == "draining again: back to rest in a normal time"


def test_resolved_by_a_person_mid_recession_is_not_reopened_by_the_same_recession() -> None:
    readings = gully(7, 5, lambda m: 20.0 if m < DAY * 3 else 600.0, [*CLEAN, Storm(DAY * 3 + 600, 90, 6.0)])
    cut = next(i for i, r in enumerate(readings) if r.at >= T0 + timedelta(minutes=DAY * 3 + 1200))
    state, out = run(readings[:cut])
    assert len(opens(out)) == 1 and state.rec is not None and state.rec.slow
    state, out = run(readings[cut:], replace(state, open=False))
    assert out == [] and not state.open


def test_a_spike_in_a_recession_neither_ends_it_nor_starts_one() -> None:
    clean = gully(8, 4, 20.0, CLEAN)

    def spikes(minute: float, excess: float) -> float | None:
        if minute in {DAY * 3 + 690, DAY * 3 + 720}:  # a down spike, then an up spike, in the recession
            return excess - 900 if minute == DAY * 3 + 690 else excess + 400
        return excess

    both = gully(8, 4, 20.0, [*CLEAN, Storm(DAY * 3 + 600, 90, 6.0)], fault=spikes)
    state, out = run(both)
    assert opens(out) == []
    assert len(state.taus) == len(run(clean)[0].taus) + 1  # the spiked recession was still learned
    # and a spike in a slow recession: it still opens, once
    slow = gully(9, 5, lambda m: 20.0 if m < DAY * 3 else 400.0, [*CLEAN, Storm(DAY * 3 + 600, 90, 6.0)], fault=spikes)
    assert len(opens(run(slow)[1])) == 1


def test_a_parked_vehicle_plateau_is_not_a_recession() -> None:
    def vehicle(minute: float, excess: float) -> float | None:
        if DAY * 3 + 600 <= minute < DAY * 3 + 960:  # six hours parked over the grate
            return 200.0 + random.Random(minute).gauss(0, 0.6)
        return excess

    state, out = run(gully(10, 4, 20.0, CLEAN, fault=vehicle))
    assert out == [] and len(state.taus) == 3
    cold, out = run(gully(11, 1, 20.0, [], fault=lambda m, x: vehicle(m + DAY * 3, x)))
    assert out == [] and cold.taus == ()


def test_a_stuck_sensor_in_a_recession_is_not_a_blockage() -> None:
    def stuck(minute: float, excess: float) -> float | None:
        return 80.0 if DAY * 3 + 700 <= minute < DAY * 3 + 1600 else excess

    _, out = run(gully(12, 4, 20.0, [*CLEAN, Storm(DAY * 3 + 600, 90, 6.0)], fault=stuck))
    assert opens(out) == []


def test_no_echo_and_tilted_readings_are_skipped_and_backfill_changes_nothing() -> None:
    state, _ = run(gully(13, 1, 20.0, [Storm(300, 90, 6.0)]))
    assert blockage.observe(RULE, state, obs(5000, None)) == (replace(state, last=T0 + timedelta(minutes=5000)), [])
    tilted = replace(obs(5001, 40.0), tilted=True)
    assert blockage.observe(RULE, state, tilted)[0].prev == state.prev
    assert blockage.observe(RULE, state, obs(100, 500.0)) == (state, [])  # older than the newest seen


def test_a_restart_mid_series_forgets_nothing() -> None:
    storms = [*CLEAN, Storm(DAY * 3 + 600, 90, 6.0), Storm(DAY * 5 + 600, 90, 6.0)]
    readings = gully(14, 7, lambda m: 400.0 if DAY * 3 <= m < DAY * 4.5 else 20.0, storms)
    straight, expected = run(readings)
    state, out = BlockageState(), []
    for reading in readings:  # through JSON at every reading, as a worker restarted each time would
        state = BlockageState.from_json(json.loads(json.dumps(state.to_json())))
        state, decisions = blockage.observe(RULE, state, reading)
        out.extend(decisions)
    assert out == expected and [type(d) for d in out] == [Open, Resolve]
    assert state == straight


def test_state_json_stays_small_over_a_month_and_reads_back_from_nothing() -> None:
    rng = random.Random(15)
    storms = [Storm(DAY * k + rng.uniform(0, 1200), rng.uniform(60, 240), rng.uniform(2, 12)) for k in range(30)]
    state, biggest = BlockageState(), 0
    for reading in gully(15, 30, lambda m: 25.0 if m < DAY * 20 else 500.0, storms):
        state, _ = blockage.observe(RULE, state, reading)
        biggest = max(biggest, len(json.dumps(state.to_json())))
    assert biggest < 4096
    assert BlockageState.from_json({}) == BlockageState()
    assert BlockageState.from_json({"open": True, "taus": [20.0]}) == BlockageState(open=True, taus=(20.0,))


def test_nothing_is_clock_driven() -> None:
    state, _ = run(gully(16, 1, 400.0, [Storm(300, 60, 5.0)]))
    assert blockage.due(RULE, state) is None and blockage.due(RULE, BlockageState()) is None
    assert blockage.tick(RULE, state, T0 + timedelta(days=9)) == (state, [])
