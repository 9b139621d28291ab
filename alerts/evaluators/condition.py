"""The state machine every "value past a level" rule shares (thresholds, battery).

pending -> firing -> resolved, driven by readings and by the clock:

- the condition starts holding: an alert opens, `pending` until it has held for `for` (at once when
  `for` is 0);
- it keeps holding: after `for` the alert fires; a move between levels changes its severity;
- it stops holding: a pending alert is dropped (it never lasted `for`); a firing one resolves once the
  condition has stayed away for `keep_firing_for` (a flood receding under the line and slopping back is
  one flood, not two);
- a reading older than the newest this rule has seen (backfill, re-sent history) never changes the
  live state; if it shows the condition while nothing is open, it is recorded as a `Late` alert.

The clock (`tick`) fires and resolves what is due without new data: a gully that sends one reading
above the line and then nothing still fires after `for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from alerts.decisions import Decision, Fire, Late, Open, Reseverity, Resolve, Severity
from alerts.evaluators.evolve import evolver

AlertState = Literal["pending", "firing"] | None


@dataclass(frozen=True, slots=True)
class ConditionState:
    """What a level rule remembers for one subject."""

    #: the level the condition holds at now (None: it does not hold)
    level: Severity | None = None
    #: when it started holding, without a break
    since: datetime | None = None
    #: the alert this rule has open for the subject (the engine corrects this from the alerts table)
    alert: AlertState = None
    #: the open alert's severity
    severity: Severity | None = None
    #: when the condition stopped holding while the alert was firing
    clear_since: datetime | None = None
    #: the newest data time evaluated
    last: datetime | None = None
    value: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "since": _iso(self.since),
            "alert": self.alert,
            "severity": self.severity,
            "clear_since": _iso(self.clear_since),
            "last": _iso(self.last),
            "value": self.value,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConditionState:
        return cls(
            level=data.get("level"),
            since=_time(data.get("since")),
            alert=data.get("alert"),
            severity=data.get("severity"),
            clear_since=_time(data.get("clear_since")),
            last=_time(data.get("last")),
            value=data.get("value"),
        )


#: `evolve` for ConditionState, bound once (alerts/evaluators/evolve.py): a copy every reading.
_condition = evolver(ConditionState)


def step(
    state: ConditionState,
    at: datetime,
    level: Severity | None,
    value: float | None,
    *,
    for_: timedelta,
    keep_firing_for: timedelta,
    summary: str,
) -> tuple[ConditionState, list[Decision]]:
    """One observation at data time `at`: the condition holds at `level` (None: it does not)."""
    if state.last is not None and at < state.last:  # late: never moves the live state
        if level is not None and state.alert is None:
            return state, [Late(at, level, value, summary)]
        return state, []
    out: list[Decision] = []
    if level is not None:
        since = state.since or at
        s = _condition(state, last=at, value=value, level=level, since=since, clear_since=None)
        if s.alert is None:
            firing = for_ <= timedelta(0)
            out.append(Open(at, level, value, firing, summary))
            s = _condition(s, alert="firing" if firing else "pending", severity=level)
        elif s.alert == "pending" and at - since >= for_:
            out.append(Fire(at, level, value))
            s = _condition(s, alert="firing", severity=level)
        elif s.severity != level:
            out.append(Reseverity(at, level, value))
            s = _condition(s, severity=level)
        return s, out
    s = _condition(state, last=at, value=value, level=None, since=None)
    if s.alert == "pending":
        out.append(Resolve(at, f"the condition ended before it had held for {_show(for_)}"))
        return _condition(s, alert=None, severity=None), out
    if s.alert == "firing":
        clear_since = s.clear_since or at
        if at - clear_since >= keep_firing_for:
            out.append(Resolve(at, "the condition ended"))
            return _condition(s, alert=None, severity=None, clear_since=None), out
        return _condition(s, clear_since=clear_since), out
    return s, out


def tick(
    state: ConditionState, now: datetime, *, for_: timedelta, keep_firing_for: timedelta
) -> tuple[ConditionState, list[Decision]]:
    """The clock at `now`: fire a pending alert whose condition has held for `for` (as of the last
    reading), resolve a firing one whose condition has been gone for `keep_firing_for`."""
    if state.alert == "pending" and state.since is not None and state.level is not None:
        due = state.since + for_
        if now >= due:
            return _condition(state, alert="firing", severity=state.level), [Fire(due, state.level, state.value)]
    if state.alert == "firing" and state.clear_since is not None:
        due = state.clear_since + keep_firing_for
        if now >= due:
            return _condition(state, alert=None, severity=None, clear_since=None), [Resolve(due, "the condition ended")]
    return state, []


def _show(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
