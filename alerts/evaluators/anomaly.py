"""Readings far outside a device's own normal, for the record (and for tuning other rules).

The baseline is a streaming median and median absolute deviation (MAD) of the value and of its rate
of change, each kept as two numbers by stochastic approximation (every reading nudges the median a
step towards itself, the step scaled to the spread), so it is robust to the outliers it is there to
find, needs no window of past readings, and is stored as plain JSON that survives a restart. Why not
river: its estimators are fine but keep Python objects (pickles) as state, which a database row
holding JSON cannot take; two numbers per series need no library.

A reading more than `k` robust standard deviations (1.4826 x MAD, at least `min_scale`) from the
median, after `learn_readings` readings, opens an `anomaly` alert; `clear_after` of ordinary readings
resolves it. Anomalous readings teach the baseline only a little (the median moves a bounded step).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.decisions import Decision, Open, Resolve
from alerts.evaluators.evolve import evolver
from alerts.rules import AnomalyRule

#: The step of the median / MAD estimators, as a fraction of the current spread.
RATE = 0.05


@dataclass(frozen=True, slots=True)
class Robust:
    """A streaming median and MAD."""

    n: int = 0
    median: float = 0.0
    mad: float = 0.0

    def scale(self, floor: float) -> float:
        return max(1.4826 * self.mad, floor)

    def update(self, x: float, floor: float) -> Robust:
        n, median, mad = self.n, self.median, self.mad  # read once: this runs twice a reading
        if n == 0:
            return Robust(1, x, 0.0)
        step = RATE * max(1.4826 * mad, floor) if n > 10 else abs(x - median) / (n + 1)  # (scale)
        median += step if x > median else -step if x < median else 0.0
        dev = abs(x - median)
        mad_step = RATE * max(mad, floor / 1.4826) if n > 10 else abs(dev - mad) / (n + 1)
        mad = max(0.0, mad + (mad_step if dev > mad else -mad_step))
        return Robust(n + 1, round(median, 4), round(mad, 4))


@dataclass(frozen=True, slots=True)
class AnomalyState:
    open: bool = False
    value: Robust = Robust()
    rate: Robust = Robust()
    last: datetime | None = None
    last_value: float | None = None
    normal_since: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "open": self.open,
            "value": [self.value.n, self.value.median, self.value.mad],
            "rate": [self.rate.n, self.rate.median, self.rate.mad],
            "last": self.last.isoformat() if self.last else None,
            "last_value": self.last_value,
            "normal_since": self.normal_since.isoformat() if self.normal_since else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnomalyState:
        def robust(raw: Any) -> Robust:
            return (
                Robust(int(raw[0]), float(raw[1]), float(raw[2]))
                if isinstance(raw, list) and len(raw) == 3
                else Robust()
            )

        def time(raw: Any) -> datetime | None:
            return datetime.fromisoformat(raw) if isinstance(raw, str) else None

        return cls(
            bool(data.get("open")),
            robust(data.get("value")),
            robust(data.get("rate")),
            time(data.get("last")),
            data.get("last_value"),
            time(data.get("normal_since")),
        )


#: `evolve` for AnomalyState, bound once (alerts/evaluators/evolve.py): a copy every reading.
_anomaly = evolver(AnomalyState)


def observe(
    rule: AnomalyRule, state: AnomalyState, at: datetime, x: float | None
) -> tuple[AnomalyState, list[Decision]]:
    """One value of the rule's metric (None: the reading does not carry it)."""
    if x is None or (state.last is not None and at <= state.last):
        return state, []
    floor = rule.min_scale
    rate: float | None = None
    if state.last is not None and state.last_value is not None:
        minutes = (at - state.last).total_seconds() / 60.0
        if 0 < minutes <= 120:
            rate = (x - state.last_value) / minutes
    far = state.value.n >= rule.learn_readings and abs(x - state.value.median) > rule.k * state.value.scale(floor)
    fast = (
        rule.rate
        and rate is not None
        and state.rate.n >= rule.learn_readings
        and abs(rate - state.rate.median) > rule.k * state.rate.scale(floor / 15.0)
    )
    s = _anomaly(
        state,
        value=state.value.update(x, floor),
        rate=state.rate.update(rate, floor / 15.0) if rate is not None else state.rate,
        last=at,
        last_value=x,
    )
    if far or fast:
        s = _anomaly(s, normal_since=None)
        if s.open:
            return s, []
        what = "far from" if far else "changing far faster than"
        summary = f"{rule.metric} {x:g} {what} this device's normal (median {state.value.median:g})"
        details = {"median": state.value.median, "scale": round(state.value.scale(floor), 3), "rate": rate}
        return _anomaly(s, open=True), [Open(at, rule.severity, x, True, summary, details=details)]
    if not s.open:
        return s, []
    since = s.normal_since or at
    if at - since >= rule.clear_after:
        return _anomaly(s, open=False, normal_since=None), [Resolve(at, "back within this device's normal")]
    return _anomaly(s, normal_since=since), []


def tick(rule: AnomalyRule, state: AnomalyState, now: datetime) -> tuple[AnomalyState, list[Decision]]:
    return state, []


def due(rule: AnomalyRule, state: AnomalyState) -> datetime | None:
    return None


__all__ = ["AnomalyState", "Robust", "due", "observe", "tick"]
