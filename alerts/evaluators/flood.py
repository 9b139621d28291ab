"""Gully flood physics: fill % past a level, confirmed the way water behaves, never by one echo.

Why not a plain threshold with `for`: a gully reports every 15 minutes, so `for: 5m` on the clock
fires on a single reading, and one bad echo (a spider, rain on the sensor face) would page someone.
Here an alert opens only when `confirm` consecutive readings are in the level. Readings water cannot
produce are skipped: a jump faster than `max_gradient_mm_per_min` from the last accepted reading
(FloodNet's filter). A level that steps from rest straight onto a dead-flat plateau (within
`plateau_mm`) is something standing over the grate (a parked vehicle): it confirms nothing until the
surface moves as water does (rain varies, the outlet drains). Once open, the alert holds until the
fill has stayed below the level (less `hysteresis`) for `keep_firing_for`, so a receding flood that
slops back over the line is one flood, not two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.decisions import Decision, Open, Reseverity, Resolve, Severity
from alerts.evaluators.evolve import evolver
from alerts.evaluators.observations import LevelObs
from alerts.rules import FloodRule


@dataclass(frozen=True, slots=True)
class FloodState:
    open: bool = False
    severity: Severity | None = None  # of the open alert
    level: Severity | None = None  # the level the last accepted reading is at
    count: int = 0  # consecutive accepted readings at `level` or above
    clear_since: datetime | None = None
    last: datetime | None = None  # newest reading judged
    prev_at: datetime | None = None  # last accepted reading
    prev_mm: float | None = None
    prev_pct: float | None = None
    step_mm: float | None = None  # a step from rest onto this level: waiting for the surface to move
    skipped_mm: float | None = None  # the last reading, skipped as impossible (a step if the next agrees)
    at_level: int = 0  # consecutive accepted readings at exactly `level` (a change of severity needs `confirm`)

    def to_json(self) -> dict[str, Any]:
        return {
            "open": self.open,
            "severity": self.severity,
            "level": self.level,
            "count": self.count,
            "clear_since": _iso(self.clear_since),
            "last": _iso(self.last),
            "prev_at": _iso(self.prev_at),
            "prev_mm": self.prev_mm,
            "prev_pct": self.prev_pct,
            "step_mm": self.step_mm,
            "skipped_mm": self.skipped_mm,
            "at_level": self.at_level,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FloodState:
        return cls(
            open=bool(data.get("open")),
            severity=data.get("severity"),
            level=data.get("level"),
            count=int(data.get("count") or 0),
            clear_since=_time(data.get("clear_since")),
            last=_time(data.get("last")),
            prev_at=_time(data.get("prev_at")),
            prev_mm=data.get("prev_mm"),
            prev_pct=data.get("prev_pct"),
            step_mm=data.get("step_mm"),
            skipped_mm=data.get("skipped_mm"),
            at_level=int(data.get("at_level") or 0),
        )


#: `evolve` for FloodState, bound once (alerts/evaluators/evolve.py): a copy every reading.
_flood = evolver(FloodState)


def level_at(rule: FloodRule, pct: float, current: Severity | None) -> Severity | None:
    """The level `pct` is at: entering a level takes its threshold, staying in it only the threshold
    less `hysteresis`."""
    found: Severity | None = None
    held = -1 if current is None else _RANKS[current]  # the levels up to this one are held
    for severity, edge in rule.levels():
        if pct > edge or (held >= _RANKS[severity] and pct > edge - rule.hysteresis):
            found = severity
    return found


def observe(rule: FloodRule, state: FloodState, obs: LevelObs) -> tuple[FloodState, list[Decision]]:
    """One reading. No echo and unknown geometry change nothing (a sensor fault is not water)."""
    if state.last is not None and obs.at <= state.last:
        return state, []  # backfill never moves the live state
    s = state
    if obs.fill_pct is None or obs.level_mm is None:
        return _flood(s, last=obs.at), []
    if s.prev_at is not None and s.prev_mm is not None:
        minutes = max((obs.at - s.prev_at).total_seconds() / 60.0, 1e-6)
        agrees = s.skipped_mm is not None and abs(obs.level_mm - s.skipped_mm) <= rule.spike_mm
        if abs(obs.level_mm - s.prev_mm) / minutes > rule.max_gradient_mm_per_min and not agrees:
            # Faster than water moves: not a reading of the surface. A real step (the sensor re-mounted)
            # is believed when the next reading agrees with the skipped one.
            return _flood(s, last=obs.at, skipped_mm=obs.level_mm), []
    level = level_at(rule, obs.fill_pct, s.level)
    step_mm = s.step_mm
    if level is None:
        step_mm = None
    elif s.level is None and (s.prev_pct is None or s.prev_pct < rule.rest_pct):
        step_mm = obs.level_mm  # straight from rest into the level: is it water?
    elif step_mm is not None and abs(obs.level_mm - step_mm) > rule.plateau_mm:
        step_mm = None  # the surface moves: water
    count = s.count + 1 if level is not None else 0
    at_level = s.at_level + 1 if level is not None and level == s.level else (1 if level is not None else 0)
    clear_since = None if level is not None else s.clear_since
    s = _flood(s, last=obs.at, skipped_mm=None, level=level, count=count, at_level=at_level, prev_at=obs.at,
                prev_mm=obs.level_mm, prev_pct=obs.fill_pct, step_mm=step_mm, clear_since=clear_since)  # fmt: skip
    out: list[Decision] = []
    if level is not None:
        if not s.open and count >= rule.confirm and step_mm is None:
            summary = f"gully {obs.fill_pct:.0f}% full ({level} above {dict(rule.levels())[level]:g}%)"
            details = {"fill_pct": round(obs.fill_pct, 1), "level_mm": round(obs.level_mm, 1), "readings": count}
            out.append(Open(obs.at, level, round(obs.fill_pct, 1), True, summary, details=details))
            s = _flood(s, open=True, severity=level)
        elif s.open and s.severity != level and at_level >= rule.confirm:
            out.append(Reseverity(obs.at, level, round(obs.fill_pct, 1)))
            s = _flood(s, severity=level)
        return s, out
    if s.open:
        clear_since = s.clear_since or obs.at
        if obs.at - clear_since >= rule.keep_firing_for:
            return _flood(s, open=False, severity=None, clear_since=None), [Resolve(obs.at, "the water went down")]
        s = _flood(s, clear_since=clear_since)
    return s, out


def tick(rule: FloodRule, state: FloodState, now: datetime) -> tuple[FloodState, list[Decision]]:
    """Resolve a receding flood once `keep_firing_for` has passed without a reading in the level
    (a gully that has gone quiet after its last low reading)."""
    due_at = due(rule, state)
    if due_at is None or now < due_at:
        return state, []
    return _flood(state, open=False, severity=None, clear_since=None), [Resolve(due_at, "the water went down")]


def due(rule: FloodRule, state: FloodState) -> datetime | None:
    if state.open and state.clear_since is not None:
        return state.clear_since + rule.keep_firing_for
    return None


_RANKS: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


__all__ = ["FloodState", "due", "level_at", "observe", "tick"]
