"""Device offline: no uplink for `missed` expected intervals. Judged on the clock, because the
evidence is data that never comes; resolved by the next uplink.

The state also remembers which gateways carried the device lately, so the engine can tell a device
gone quiet from a gateway gone down (`sole_gateway`, alerts/evaluators/gateway.py): a device whose
silence a gateway outage explains is held back (`inhibited_by`) instead of raising its own alert."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.decisions import Decision, Open, Resolve, Severity
from alerts.evaluators.evolve import evolve


@dataclass(frozen=True, slots=True)
class OfflineState:
    last_seen: datetime | None = None
    open: bool = False
    #: a person resolved the alert while the device was still silent: count the silence afresh from the
    #: next tick, rather than reopen at once an alert about the same silence
    rearm: bool = False
    #: gateway id -> when it last carried this device (epoch seconds)
    gateways: Mapping[str, float] = field(default_factory=dict)
    #: the gateway whose outage explains this device's silence (its own alert is held back)
    inhibited_by: str | None = None
    #: the silence is counted from here rather than from `last_seen` (set when a gateway outage that
    #: held the device back ends: its devices get a full interval to be heard again)
    counted_from: datetime | None = None

    @property
    def quiet_since(self) -> datetime | None:
        if self.last_seen is None or self.counted_from is None:
            return self.last_seen
        return max(self.last_seen, self.counted_from)

    def to_json(self) -> dict[str, Any]:
        seen = self.last_seen.isoformat() if self.last_seen else None
        counted = self.counted_from.isoformat() if self.counted_from else None
        return {"last_seen": seen, "open": self.open, "rearm": self.rearm, "gateways": dict(self.gateways),
                "inhibited_by": self.inhibited_by, "counted_from": counted}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OfflineState:
        seen = data.get("last_seen")
        last = datetime.fromisoformat(seen) if isinstance(seen, str) else None
        gateways = data.get("gateways") if isinstance(data.get("gateways"), dict) else {}
        inhibited = data.get("inhibited_by")
        counted = data.get("counted_from")
        return cls(last, bool(data.get("open")), bool(data.get("rearm")), dict(gateways or {}),
                   inhibited if isinstance(inhibited, str) else None,
                   datetime.fromisoformat(counted) if isinstance(counted, str) else None)  # fmt: skip

    def sole_gateway(self, recent: timedelta) -> str | None:
        """The one gateway that carried the device within `recent` of its last uplink, if only one did."""
        if self.last_seen is None:
            return None
        since = self.last_seen.timestamp() - recent.total_seconds()
        heard = [g for g, t in self.gateways.items() if t >= since]
        return heard[0] if len(heard) == 1 else None


#: Gateways a device has not used for this long are forgotten (it was moved, or the gateway removed).
FORGET_S = 7 * 86400.0


def seen(state: OfflineState, at: datetime, gateways: Sequence[str] = ()) -> tuple[OfflineState, list[Decision]]:
    """An uplink at data time `at` through `gateways` (an older one, from backfill, moves nothing back).
    A device heard again is no longer held back by a gateway outage."""
    last = state.last_seen
    newest = at if last is None or at >= last else last
    stamp = at.timestamp()
    known = state.gateways
    via: Mapping[str, float]
    if len(known) == 1 and len(gateways) == 1 and (gateway := gateways[0]) in known and at is newest:
        # Most uplinks: the newest, through the one gateway that carried the last (nothing to forget).
        via = {gateway: stamp} if stamp > known[gateway] else known
    elif (
        at is newest and known and len(known) == len(gateways) and known.keys() == set(gateways)
        and max(known.values()) <= stamp
    ):  # fmt: skip
        # The newest again, through the same gateways as before (two or three, in a dense network):
        # every one carried it now, and none is old enough to forget (what `_carried` would make).
        via = dict.fromkeys(known, stamp)
    else:
        via = _carried(known, tuple(gateways), stamp, newest.timestamp() - FORGET_S)
    if state.open and at >= (last or at):
        return OfflineState(newest, False, False, via), [Resolve(at, "the device is sending again")]
    if last is not None and at < last:  # re-sent history: the device is no less silent
        return evolve(state, gateways=via), []
    return OfflineState(newest, state.open, False, via), []


def _carried(known: Mapping[str, float], gateways: tuple[str, ...], stamp: float, oldest: float) -> Mapping[str, float]:
    """The gateway map after an uplink at `stamp` through `gateways`, without those unused since `oldest`."""
    via = known
    if any(known.get(g, -1.0) < stamp for g in gateways):
        via = dict(known)
        for gateway in gateways:
            via[gateway] = max(via.get(gateway, 0.0), stamp)
    if any(t < oldest for t in via.values()):
        via = {g: t for g, t in via.items() if t >= oldest}
    return via


def tick(
    state: OfflineState, now: datetime, silent_after: timedelta, severity: Severity
) -> tuple[OfflineState, list[Decision]]:
    """The clock at `now`: open once the device has been silent for `silent_after`."""
    if state.rearm:
        return OfflineState(now, False, False, state.gateways), []
    quiet = state.quiet_since
    if state.open or state.last_seen is None or quiet is None or state.inhibited_by is not None:
        return state, []
    due = quiet + silent_after
    if now < due:
        return state, []
    minutes = int(silent_after.total_seconds() // 60)
    summary = f"no uplink since {state.last_seen.isoformat()} ({minutes} min without one)"
    return evolve(state, open=True), [Open(due, severity, None, True, summary)]


def due(state: OfflineState, silent_after: timedelta) -> datetime | None:
    """When the clock next has something to decide: the silence reaching `silent_after` (or at once, to
    re-arm after a person resolved the alert); nothing while open or held back by a gateway outage."""
    quiet = state.quiet_since
    if state.last_seen is None or quiet is None or state.open or state.inhibited_by is not None:
        return None
    return state.last_seen if state.rearm else quiet + silent_after
