"""Alarms the device raises itself (the VS373's fall detection), keyed by the device's own alarm id.

The device says `alarm_triggered` when someone falls and `alarm_deactivated` when it clears, and it
re-sends its history (the same alarm ids, with the device's own timestamps) after a gap. So:

- the first `triggered` of an alarm id opens a firing alert at once (falls are never delayed);
- the same id again (history re-sent, a duplicate uplink) is only noted, never a second alert;
- `deactivated` is noted on the open alert ("the device cleared it"); the alert stays for a person to
  acknowledge unless the rule says `on_device_clear: resolve`;
- another alarm id while one is open is noted on that alert (one person, one open fall).

A triggered alarm older than the newest alarm this rule has handled, with nothing open, is a late
record: kept, marked late, notifying nobody.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.decisions import Decision, Late, Note, Open, Resolve
from alerts.evaluators.evolve import evolve
from alerts.rules import DeviceAlarmRule

#: How long an alarm id is remembered (ids are 16-bit and restart when the device does).
REMEMBER = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class AlarmState:
    #: alarm key -> data time it was first seen
    seen: dict[str, str] = field(default_factory=dict)
    #: the alarm key of the open alert (None: nothing open)
    open_key: str | None = None
    open: bool = False
    last: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "open_key": self.open_key,
            "open": self.open,
            "last": self.last.isoformat() if self.last else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlarmState:
        last = data.get("last")
        return cls(
            seen=dict(data.get("seen") or {}),
            open_key=data.get("open_key"),
            open=bool(data.get("open")),
            last=datetime.fromisoformat(last) if isinstance(last, str) else None,
        )


def evaluate(
    rule: DeviceAlarmRule, state: AlarmState, at: datetime, kind: str, attrs: dict[str, Any]
) -> tuple[AlarmState, list[Decision]]:
    """One event at data time `at`."""
    if not rule.matches(kind, attrs):
        return state, []
    action = rule.action(attrs)
    if action is None:
        return state, []
    key = rule.alarm_key(attrs)
    label = f"alarm {key}" if key is not None else "alarm"
    seen = {k: v for k, v in state.seen.items() if datetime.fromisoformat(v) > at - REMEMBER}
    if action == "open":
        if key is not None and key in seen:
            again: list[Decision] = [Note(at, f"{label} reported again (re-sent history or a repeat): no new alert")]
            return evolve(state, seen=seen), again if state.open else []
        if key is not None:
            seen[key] = at.isoformat()
        if state.open:
            return evolve(state, seen=seen), [Note(at, f"another {rule.category} {label} while this one is open")]
        if state.last is not None and at < state.last:
            return evolve(state, seen=seen), [Late(at, rule.severity, None, f"{rule.category}: {label}", key)]
        decision = Open(at, rule.severity, None, True, f"{rule.category}: device {label}", key)
        return AlarmState(seen, key, True, max(at, state.last or at)), [decision]
    # the device cleared an alarm
    if not state.open or (key is not None and state.open_key is not None and key != state.open_key):
        return evolve(state, seen=seen), []
    if rule.on_device_clear == "resolve":
        return AlarmState(seen, None, False, state.last), [Resolve(at, f"the device cleared {label}")]
    return evolve(state, seen=seen), [Note(at, f"the device cleared {label}")]
