"""Level rules: a metric past a warning/critical threshold (water level, fill %, any reading column)
and a low battery. Both are the shared condition machine (`condition.py`) with their own idea of
which level a value is at."""

from __future__ import annotations

from datetime import datetime

from alerts.decisions import Decision, Severity
from alerts.evaluators.condition import ConditionState, step
from alerts.rules import BatteryRule, ThresholdRule


def threshold_level(rule: ThresholdRule, value: float, current: Severity | None) -> Severity | None:
    """The level `value` is at, given the level the condition holds at now: entering a level takes
    its threshold; staying at it only the hysteresis band (or `clear` for the lowest level)."""
    reached = rule.severity_at(value)
    if current is None:
        return reached
    order = [severity for severity, _ in rule.levels()]
    if current not in order:  # the rule was edited since: judge afresh
        return reached
    for severity in reversed(order[: order.index(current) + 1]):
        if reached is not None and order.index(reached) >= order.index(severity):
            return reached
        if rule.holds(severity, value):
            return severity
    return reached


def threshold(
    rule: ThresholdRule, state: ConditionState, at: datetime, value: float | None
) -> tuple[ConditionState, list[Decision]]:
    """One reading's value of the rule's metric (None: the reading does not carry it: no change)."""
    if value is None:
        return state, []
    level = threshold_level(rule, value, state.level)
    summary = _summary(rule, level, value)
    return step(state, at, level, value, for_=rule.for_, keep_firing_for=rule.keep_firing_for, summary=summary)


def battery(
    rule: BatteryRule, state: ConditionState, at: datetime, volts: float | None, pct: float | None
) -> tuple[ConditionState, list[Decision]]:
    """One reading's battery: low opens; it holds until the battery has recovered (replaced)."""
    if volts is None and pct is None:
        return state, []
    low = rule.low(volts, pct) or (state.level is not None and not rule.recovered(volts, pct))
    level: Severity | None = rule.severity if low else None
    shown = f"{volts:g} V" if volts is not None else f"{pct:g} %"
    value = volts if volts is not None else pct
    return step(
        state,
        at,
        level,
        value,
        for_=rule.for_,
        keep_firing_for=rule.keep_firing_for,
        summary=f"battery low: {shown}",
    )


def _summary(rule: ThresholdRule, level: Severity | None, value: float) -> str:
    if level is None:
        return f"{rule.metric} {value:g}"
    threshold_ = dict(rule.levels())[level]
    return f"{rule.metric} {value:g} {threshold_.direction} {level} threshold {threshold_.value:g}"
