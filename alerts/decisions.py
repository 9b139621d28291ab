"""What an evaluator decides, as data: the engine applies decisions to the alerts table.

Evaluators never touch the database or the clock; they take a rule, the state they stored last time
and one observation (a reading, an event, a clock tick) and return their new state and a list of
these. Times are data times (the reading's, or the tick's), never `datetime.now()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Severity = Literal["critical", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Open:
    """The condition began: open an alert, `pending` until `for` has passed, or `firing` at once."""

    at: datetime
    severity: Severity
    value: float | None
    firing: bool
    summary: str
    alarm_key: str | None = None
    #: for an alert about a group (a care flat), the device it is best shown on; None: the subject's own
    device_id: str | None = None
    #: what the detector knew when it decided (the reason, learned values), kept in alerts.details
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Fire:
    """A pending alert's condition has held for `for`: it fires (and notifies)."""

    at: datetime
    severity: Severity
    value: float | None


@dataclass(frozen=True, slots=True)
class Reseverity:
    """An open alert moved to another level (warning to critical, or back)."""

    at: datetime
    severity: Severity
    value: float | None


@dataclass(frozen=True, slots=True)
class Resolve:
    """The condition is over (and stayed over for `keep_firing_for`), or never lasted `for`."""

    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Note:
    """Something worth recording on the open alert (the device cleared its alarm, a repeat of it)."""

    at: datetime
    text: str


@dataclass(frozen=True, slots=True)
class Late:
    """The condition held in data older than what this rule has already seen (backfill, re-sent
    history): recorded as a resolved, late alert that notifies nobody."""

    at: datetime
    severity: Severity
    value: float | None
    summary: str
    alarm_key: str | None = None


Decision = Open | Fire | Reseverity | Resolve | Note | Late
