"""Level sensors that are not measuring water: no echo, tilt, stuck readings, repeated spikes, and
something standing over the grate. One `sensor_fault` alert per device, with the reason, and never a
flood: the flood detector skips exactly these readings.

Why learned for "stuck": a dry gully under a sensor that reports whole millimetres can repeat one
value for hours, so a fixed limit either misses a frozen sensor or pages about a quiet gully. Each
device's longest run of identical distances in normal service is learned (and stored); a run
`stuck_factor` times longer than that, and at least `stuck_min_for`, is a fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.decisions import Decision, Open, Resolve
from alerts.evaluators.evolve import evolver
from alerts.evaluators.observations import LevelObs
from alerts.rules import SensorFaultRule


@dataclass(frozen=True, slots=True)
class FaultState:
    open: bool = False
    reason: str | None = None
    last: datetime | None = None
    normal_since: datetime | None = None  # readings have been normal since (while a fault is open)
    no_echo_since: datetime | None = None
    tilted: int = 0
    run_mm: float | None = None  # the distance repeated since run_start
    run_start: datetime | None = None
    longest_run_s: float = 0.0  # learned: the longest identical run in normal service
    spikes: tuple[float, ...] = ()  # epoch seconds of recent single-point spikes
    prev_at: datetime | None = None  # last accepted level reading
    prev_mm: float | None = None
    prev_pct: float | None = None
    candidate_mm: float | None = None  # a reading far from prev: a spike if the next one comes back
    candidate_pct: float | None = None
    candidate_at: datetime | None = None
    step_mm: float | None = None  # a step from rest onto a level: a plateau there is an obstruction
    step_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        out["spikes"] = list(self.spikes)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultState:
        fields: dict[str, Any] = {}
        for name in cls.__slots__:
            if name in data and data[name] is not None:
                fields[name] = data[name]
        for name in ("last", "normal_since", "no_echo_since", "run_start", "prev_at", "step_at", "candidate_at"):
            if isinstance(fields.get(name), str):
                fields[name] = datetime.fromisoformat(fields[name])
        fields["spikes"] = tuple(float(t) for t in data.get("spikes") or ())
        return cls(**fields)


#: `evolve` for FaultState, bound once (alerts/evaluators/evolve.py): a copy every reading.
_fault = evolver(FaultState)


def observe(rule: SensorFaultRule, state: FaultState, obs: LevelObs) -> tuple[FaultState, list[Decision]]:
    if state.last is not None and obs.at <= state.last:
        return state, []
    reason: str | None = None
    if obs.distance_valid is False or obs.distance_mm is None:
        since = state.no_echo_since or obs.at
        s = _fault(state, last=obs.at, no_echo_since=since)
        if obs.at - since >= rule.no_echo_for:
            reason = "no echo"
        return _settle(rule, s, obs.at, reason, abnormal=True)
    # One copy of the state per reading: what the echo, tilt and stuck checks change goes into the copy
    # `_shape` makes (none of them reads what another changes).
    tilted = state.tilted + 1 if obs.tilted else 0
    if tilted >= rule.tilt_readings:
        reason = "tilted"
    run_mm, run_start, longest_run_s, stuck = _stuck(rule, state, obs)
    reason = reason or stuck
    also = {"last": obs.at, "no_echo_since": None, "tilted": tilted, "run_mm": run_mm, "run_start": run_start,
            "longest_run_s": longest_run_s}  # fmt: skip
    s, odd = _shape(rule, state, obs, also)
    reason = reason or odd
    abnormal = bool(obs.tilted) or stuck is not None or odd is not None
    return _settle(rule, s, obs.at, reason, abnormal=abnormal)


def _stuck(rule: SensorFaultRule, s: FaultState, obs: LevelObs) -> tuple[float, datetime, float, str | None]:
    """The run of identical distances after this reading (run_mm, run_start, longest_run_s), and the
    fault if the run is far longer than this device's own."""
    assert obs.distance_mm is not None
    value = round(obs.distance_mm, 1)
    if s.run_mm == value and s.run_start is not None:
        length = (obs.at - s.run_start).total_seconds()
        limit = max(rule.stuck_min_for.total_seconds(), rule.stuck_factor * s.longest_run_s)
        return s.run_mm, s.run_start, s.longest_run_s, (
            f"stuck at {value:g} mm for {length / 3600:.1f} h" if length >= limit else None
        )  # fmt: skip
    longest = s.longest_run_s
    if s.run_start is not None and s.run_mm is not None and not (s.open and s.reason and s.reason.startswith("stuck")):
        ended = (obs.at - s.run_start).total_seconds()
        limit = max(rule.stuck_min_for.total_seconds(), rule.stuck_factor * s.longest_run_s)
        if ended < limit:  # a normal run: learn how long this device repeats itself
            longest = max(longest, ended)
    return value, obs.at, longest, None


def _shape(
    rule: SensorFaultRule, s: FaultState, obs: LevelObs, also: dict[str, Any], *, hold: bool = True
) -> tuple[FaultState, str | None]:
    """Spikes (one reading far off, the next back) and obstructions (a step from rest onto a plateau).
    `also`: other fields the reading changes, none of them read here, put in the same copy."""
    if obs.level_mm is None:
        return (_fault(s, **also) if also else s), None
    reason: str | None = None
    if s.prev_mm is not None and s.prev_at is not None:
        jump = abs(obs.level_mm - s.prev_mm)
        minutes = max((obs.at - s.prev_at).total_seconds() / 60.0, 1e-6)
        far = jump > rule.spike_mm or jump / minutes > rule.max_gradient_mm_per_min
        if hold and s.candidate_mm is None and far and s.step_mm is None:  # hold it: is it one point?
            return _fault(s, candidate_mm=obs.level_mm, candidate_pct=obs.fill_pct, candidate_at=obs.at, **also), None
        if s.candidate_mm is not None:
            if jump <= rule.spike_mm:  # back where it was: the held reading was a spike
                now = obs.at.timestamp()
                window = rule.spike_window.total_seconds()
                spikes = (*[t for t in s.spikes if now - t <= window], now)
                if len(spikes) >= rule.spikes:
                    reason = f"{len(spikes)} echo spikes within {_hours(rule.spike_window)}"
                return _fault(s, spikes=spikes, candidate_mm=None, candidate_pct=None, candidate_at=None,
                              prev_at=obs.at, prev_mm=obs.level_mm, prev_pct=obs.fill_pct, **also), reason  # fmt: skip
            if s.candidate_at is not None:  # it stayed: a real change, judged as the reading it was
                held = LevelObs(s.candidate_at, None, True, s.candidate_mm, None, s.candidate_pct)
                s, _ = _shape(
                    rule, _fault(s, candidate_mm=None, candidate_pct=None, candidate_at=None), held, {}, hold=False
                )
                return _shape(rule, s, obs, also)
            s = _fault(s, candidate_mm=None, candidate_pct=None, candidate_at=None)
    pct = obs.fill_pct
    step_mm, step_at = s.step_mm, s.step_at
    if pct is not None and s.prev_pct is not None:
        rising_from_rest = s.prev_pct < rule.rest_pct and pct >= rule.rest_pct + 10
        if step_mm is None and rising_from_rest and s.prev_mm is not None and obs.level_mm - s.prev_mm > rule.spike_mm:
            step_mm, step_at = obs.level_mm, obs.at
        elif step_mm is not None and (abs(obs.level_mm - step_mm) > rule.plateau_mm or pct < rule.rest_pct):
            step_mm, step_at = None, None
    if step_mm is not None and step_at is not None and obs.at - step_at >= rule.obstruction_for:
        reason = f"a flat level {obs.level_mm - step_mm:+.0f} mm after a step from rest: something over the grate?"
    return _fault(s, prev_at=obs.at, prev_mm=obs.level_mm, prev_pct=pct, step_mm=step_mm, step_at=step_at,
                  **also), reason  # fmt: skip


def _settle(
    rule: SensorFaultRule, s: FaultState, at: datetime, reason: str | None, *, abnormal: bool
) -> tuple[FaultState, list[Decision]]:
    if reason is not None:
        if s.normal_since is not None:
            s = _fault(s, normal_since=None)
        if not s.open:
            summary = f"sensor fault: {reason}"
            return _fault(s, open=True, reason=reason), [
                Open(at, rule.severity, None, True, summary, details={"reason": reason})
            ]
        return s, []
    if not s.open:
        return s, []
    if abnormal:
        return (_fault(s, normal_since=None) if s.normal_since is not None else s), []
    since = s.normal_since or at
    if at - since >= rule.clear_after:
        return _fault(s, open=False, reason=None, normal_since=None, spikes=()), [
            Resolve(at, "the sensor reads normally again")
        ]
    return (_fault(s, normal_since=since) if since != s.normal_since else s), []


def tick(rule: SensorFaultRule, state: FaultState, now: datetime) -> tuple[FaultState, list[Decision]]:
    return state, []  # every sign of a fault comes with a reading


def due(rule: SensorFaultRule, state: FaultState) -> datetime | None:
    return None


def _hours(value: timedelta) -> str:
    return f"{value.total_seconds() / 3600:g} h"


__all__ = ["FaultState", "due", "observe", "tick"]
