"""A gully's state on the flood-risk overview, from its open alerts and its newest reading. Pure: the
caller reads the store (store/overview.py) and passes the clock in.

The states, most urgent first (their `rank`; the overview sorts by it):

    flooding      a critical flood alert is open: water at or over the grate
    warning       a flood warning alert is open, or the newest fill % is at or over the flood rule's
                  warning level (not yet confirmed by the rule, which wants `confirm` readings)
    rising        a `rising` alert is open, or the level is rising at RISING_MM_PER_H or faster
    blockage      a blockage alert is open: the gully drains far slower than it learned it does
    sensor_fault  a sensor fault alert is open: its readings are not water
    offline       an offline or gateway-offline alert is open, or it has been silent OFFLINE_AFTER, or
                  it was never heard
    silting       a silt alert is open: its dry-weather level is creeping up
    normal        none of those

Why this order: the first three are water on the road now or soon; a blocked gully floods in the
next storm; a faulty or silent sensor leaves the gully unwatched (its risk is unknown, so it sorts
above the known-safe); silting is planned cleansing, not an emergency.

How the evidence combines: open alerts come first (the alert rules confirmed them, with hysteresis
and hold times, so a flood alert keeps a receding gully at "warning" until the rule clears it); the
newest reading adds warning or rising only when it can be trusted: no sensor fault or offline alert
is open and the reading is at most STALE_AFTER old (a week-old 45 % says nothing about now). The most
urgent of everything that applies is the state, so a silting gully in a storm shows "rising".
Anomaly and battery alerts set no state (the table shows the battery).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.rules import DeviceLike, FloodRule, RuleSet
from store.device_views import OFFLINE_AFTER
from store.overview import GullyStatus, OpenAlert

#: A level rising this fast (mm per hour, over the last hour of readings) is "rising": a gully at rest
#: moves a few mm an hour (echo noise, evaporation); a storm's inflow lifts it by hundreds of mm an hour.
#: 30 mm/h is far above the noise and reached early in any storm that matters.
RISING_MM_PER_H = 30.0
#: A reading older than this is not used for warning/rising (a gully reports every 15 minutes or so).
STALE_AFTER = timedelta(hours=2)
#: The shipped rules' levels (alerts/default_rules.yaml), used when no flood rule applies to gullies.
DEFAULT_WARNING_PCT = 40.0
DEFAULT_CRITICAL_PCT = 60.0

#: Machine name -> (label, rank), most urgent first.
STATES: dict[str, tuple[str, int]] = {
    "flooding": ("Flooding", 0),
    "warning": ("Warning", 1),
    "rising": ("Rising", 2),
    "blockage": ("Suspected blockage", 3),
    "sensor_fault": ("Sensor fault", 4),
    "offline": ("Offline", 5),
    "silting": ("Silting", 6),
    "normal": ("Normal", 7),
}


@dataclass(frozen=True, slots=True)
class FloodLevels:
    """The flood rule's fill % levels. A rule with only a critical level warns at it; a rule with only a
    warning level has no critical one (None)."""

    warning_pct: float
    critical_pct: float | None


@dataclass(frozen=True, slots=True)
class GullyState:
    """What the overview shows for a gully: `state` (a key of STATES), its label, its rank (0 most
    urgent) and why, in words (for the table and the map's hover)."""

    state: str
    label: str
    rank: int
    reason: str


def flood_levels(ruleset: RuleSet | None, device: DeviceLike | None = None) -> FloodLevels:
    """The levels of the first enabled flood rule that applies to gullies (to `device`, with its
    overrides, when given), else the shipped defaults (40 / 60 %). A rule pinned to some devices,
    groups or applications applies to gullies only with `device`."""
    rules: Iterable[object] = ()
    if ruleset is not None and device is not None:
        rules = ruleset.rules_for(device)
    elif ruleset is not None:
        rules = (r for r in ruleset.rules if _for_all_gullies(r))
    for rule in rules:
        if isinstance(rule, FloodRule) and not rule.disabled:
            warning = rule.warning.value if rule.warning is not None else None
            critical = rule.critical.value if rule.critical is not None else None
            if warning is None:
                assert critical is not None  # a flood rule has at least one level (its validator)
                return FloodLevels(critical, critical)
            return FloodLevels(warning, critical)
    return FloodLevels(DEFAULT_WARNING_PCT, DEFAULT_CRITICAL_PCT)


def _for_all_gullies(rule: object) -> bool:
    if not isinstance(rule, FloodRule):
        return False
    a = rule.applies_to
    return a.kind in (None, "gully") and not (a.devices or a.groups or a.applications)


def _state(name: str, reason: str, label: str | None = None) -> GullyState:
    default, rank = STATES[name]
    return GullyState(name, label or default, rank, reason)


def _from_alert(alert: OpenAlert) -> GullyState | None:
    what = f"open {alert.severity} {alert.category} alert"
    match alert.category:
        case "flood":
            return _state("flooding" if alert.severity == "critical" else "warning", what)
        case "rising":
            return _state("rising", what)
        case "blockage":
            return _state("blockage", what)
        case "silt":
            return _state("silting", what)
        case "sensor_fault":
            return _state("sensor_fault", what)
        case "offline" | "gateway_offline":
            return _state("offline", what)
    return None


def classify(status: GullyStatus, levels: FloodLevels, now: datetime) -> GullyState:
    """The gully's state at `now` (see the module's docstring for the rules)."""
    found = [s for a in status.open_alerts if (s := _from_alert(a)) is not None]
    blind = any(s.state in ("sensor_fault", "offline") for s in found)
    if status.last_seen is None:
        found.append(_state("offline", "never heard", "Offline (never heard)"))
        blind = True
    elif now - status.last_seen > OFFLINE_AFTER:
        found.append(_state("offline", f"silent for more than {OFFLINE_AFTER.total_seconds() / 3600:.0f} h"))
        blind = True
    fresh = status.reading_time is not None and now - status.reading_time <= STALE_AFTER
    if fresh and not blind:
        if status.fill_pct is not None and status.fill_pct >= levels.warning_pct:
            found.append(_state("warning", f"{status.fill_pct:.0f} % full (warning level {levels.warning_pct:.0f} %)"))
        if status.trend_mm_per_h is not None and status.trend_mm_per_h >= RISING_MM_PER_H:
            found.append(_state("rising", f"rising {status.trend_mm_per_h:.0f} mm/h"))
    if not found:
        return _state("normal", "no open alerts" + ("" if fresh else "; no recent reading"))
    return min(found, key=lambda s: s.rank)  # the first of equals: alerts were added first


def sort_key(status: GullyStatus, state: GullyState) -> tuple[int, float, float, str, str]:
    """Sorted by risk: state rank, then the fuller gully first, then the faster rise, then by name.
    Unknown fill and trend sort after known ones."""
    fill = -status.fill_pct if status.fill_pct is not None else float("inf")
    trend = -status.trend_mm_per_h if status.trend_mm_per_h is not None else float("inf")
    return (state.rank, fill, trend, status.device_id, status.application_id)


__all__ = [
    "DEFAULT_CRITICAL_PCT",
    "DEFAULT_WARNING_PCT",
    "RISING_MM_PER_H",
    "STALE_AFTER",
    "STATES",
    "FloodLevels",
    "GullyState",
    "classify",
    "flood_levels",
    "sort_key",
]
