"""Device offline: no uplink for `missed` expected intervals. Judged on the clock, because the
evidence is data that never comes; resolved by the next uplink."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from alerts.decisions import Decision, Open, Resolve, Severity


@dataclass(frozen=True, slots=True)
class OfflineState:
    last_seen: datetime | None = None
    open: bool = False
    #: a person resolved the alert while the device was still silent: count the silence afresh from the
    #: next tick, rather than reopen at once an alert about the same silence
    rearm: bool = False

    def to_json(self) -> dict[str, Any]:
        seen = self.last_seen.isoformat() if self.last_seen else None
        return {"last_seen": seen, "open": self.open, "rearm": self.rearm}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OfflineState:
        seen = data.get("last_seen")
        last = datetime.fromisoformat(seen) if isinstance(seen, str) else None
        return cls(last, bool(data.get("open")), bool(data.get("rearm")))


def seen(state: OfflineState, at: datetime) -> tuple[OfflineState, list[Decision]]:
    """An uplink at data time `at` (an older one, from backfill, only moves nothing back)."""
    newest = at if state.last_seen is None or at > state.last_seen else state.last_seen
    if state.open and at >= (state.last_seen or at):
        return OfflineState(newest, False), [Resolve(at, "the device is sending again")]
    return replace(state, last_seen=newest, rearm=False), []


def tick(
    state: OfflineState, now: datetime, silent_after: timedelta, severity: Severity
) -> tuple[OfflineState, list[Decision]]:
    """The clock at `now`: open once the device has been silent for `silent_after`."""
    if state.rearm:
        return OfflineState(now, False, False), []
    if state.open or state.last_seen is None:
        return state, []
    due = state.last_seen + silent_after
    if now < due:
        return state, []
    minutes = int(silent_after.total_seconds() // 60)
    summary = f"no uplink since {state.last_seen.isoformat()} ({minutes} min without one)"
    return replace(state, open=True), [Open(due, severity, None, True, summary)]
