"""Silt creep: the dry-weather level of a gully drifting up over days.

Grit washed off the road settles in the pot and builds up from the invert. The level sensor sees
whichever surface is higher, the water or the silt, so silt shows up as a resting level that climbs a
few mm a day. Silt is the slow road to a blockage, and a cleanse fixes it. It is an `info` job for the
next round, not an emergency.

Each UTC day, the day's *dry level* is the `rule.quantile` (0.1) quantile of its readings. A low
quantile is the level the gully rests at: it ignores the storms, the hours a vehicle is parked over the
grate and a lone bad echo, as long as the gully is at rest for more than a tenth of the day. The day's
readings are kept as counts per whole mm (at most `MAX_BINS` bins, the highest merged), so a day is a
few hundred bytes whatever the reporting interval.

The last `KEEP_DAYS` daily levels are kept with a learned *clean* level. The clean level starts as
the median of the first `CLEAN_DAYS` days, then becomes the lowest median of `CLEAN_DAYS` consecutive
days seen since. The alert opens when, over the last `rule.window`, with at least `rule.min_days` daily
levels:

- the Theil-Sen slope (the median of the pairwise slopes, robust to a day or two that are odd) is at
  least `rule.min_mm_per_day`;
- the level is still climbing: the slope over the newest half of the window is positive;
- the climb is steady: the levels sit close to the Theil-Sen line (the median distance is at most the
  larger of `STEADY_MM` and one day's rise);
- the latest level is at least `rule.min_rise_mm` above the clean level.

The second and third conditions exist for the gully a blockage left full after a storm. Its level
jumps and then falls over days, which a slope from the dry days before the storm would read as a
climb. Silt climbs steadily; water left by a blockage falls.

The alert resolves when a day's level is back within `rule.min_rise_mm / 2` of clean: the gully was
cleansed. The clean level is then learned afresh from the days that follow, as it is when a person
resolves the alert by hand, so the alert does not reopen at once.

Decisions are made as a day closes, at the day's end (UTC midnight). That happens at the first reading
of the next day, or on the clock (`tick`) an hour after midnight if no reading has come by then.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from statistics import median
from typing import Any

from alerts.decisions import Decision, Open, Resolve
from alerts.evaluators.evolve import evolver
from alerts.evaluators.observations import LevelObs
from alerts.rules import SiltRule

#: How many daily dry levels are kept.
KEEP_DAYS = 30
#: How many days the clean level is learned from (and the run of days it may fall to).
CLEAN_DAYS = 3
#: A day with fewer readings than this has no dry level (a sensor fitted at tea time, an outage).
MIN_READINGS = 12
#: At most this many 1 mm bins per day: the highest are merged, which changes nothing unless the
#: gully is wet for nine tenths of the day.
MAX_BINS = 48
#: A climb is steady when the levels are this close (mm) to their Theil-Sen line (the median distance),
#: or within one day's rise if that is more. The daily quantile of a still surface moves by about 1 mm.
STEADY_MM = 3.0
#: The clock closes a day this long after it ends, if no reading of the next day has closed it first.
GRACE = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class SiltState:
    """What the silt rule remembers for one gully (about 1 KB as JSON after a month)."""

    #: this rule has an alert open for the gully (the engine sets it False when a person resolves it)
    open: bool = False
    #: this rule opened the alert and has not resolved it: with `open` False, a person resolved it
    alerted: bool = False
    #: the newest reading time seen: older readings (backfill) never move the live state
    last: datetime | None = None
    #: the UTC day being collected, its readings per whole mm of excess, and the readings merged above
    #: the bins (`over`, from `over_from` mm up)
    day: date | None = None
    bins: tuple[tuple[int, int], ...] = ()
    over: int = 0
    over_from: int | None = None
    #: daily dry levels (day, mm), oldest first, since the clean level was last learned afresh
    levels: tuple[tuple[date, float], ...] = ()
    #: the learned clean dry level (mm), None while it is being learned
    clean: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "open": self.open,
            "alerted": self.alerted,
            "last": self.last.isoformat() if self.last is not None else None,
            "day": self.day.isoformat() if self.day is not None else None,
            "bins": [list(b) for b in self.bins],
            "over": self.over,
            "over_from": self.over_from,
            "levels": [[d.isoformat(), v] for d, v in self.levels],
            "clean": self.clean,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SiltState:
        last, day, clean = data.get("last"), data.get("day"), data.get("clean")
        bins, levels = data.get("bins"), data.get("levels")
        over_from = data.get("over_from")
        return cls(
            open=bool(data.get("open")),
            alerted=bool(data.get("alerted")),
            last=datetime.fromisoformat(last) if isinstance(last, str) else None,
            day=date.fromisoformat(day) if isinstance(day, str) else None,
            bins=tuple((int(b[0]), int(b[1])) for b in bins if len(b) == 2) if isinstance(bins, list) else (),
            over=int(data.get("over") or 0),
            over_from=int(over_from) if isinstance(over_from, int | float) else None,
            levels=(
                tuple((date.fromisoformat(d), float(v)) for d, v in levels)[-KEEP_DAYS:]
                if isinstance(levels, list)
                else ()
            ),
            clean=float(clean) if isinstance(clean, int | float) else None,
        )


#: `evolve` for SiltState, bound once (alerts/evaluators/evolve.py): a copy every reading.
_silt = evolver(SiltState)


def observe(rule: SiltRule, state: SiltState, obs: LevelObs) -> tuple[SiltState, list[Decision]]:
    """Take one reading. A reading from a new UTC day first closes the day before. Readings with no
    echo, tilted readings and older readings are skipped."""
    if state.last is not None and obs.at <= state.last:
        return state, []
    if obs.excess_mm is None or obs.tilted:
        return _silt(state, last=obs.at), []
    today = obs.at.astimezone(UTC).date()
    out: list[Decision] = []
    if state.day is not None and today > state.day:
        state = _close(rule, state, out)
    return _count(state, math.floor(obs.excess_mm), last=obs.at, day=state.day or today), out


def tick(rule: SiltRule, state: SiltState, now: datetime) -> tuple[SiltState, list[Decision]]:
    """On the clock: close a day that ended more than GRACE ago with no reading of the next day."""
    at = due(rule, state)
    if at is None or now < at:
        return state, []
    out: list[Decision] = []
    return _close(rule, state, out), out


def due(rule: SiltRule, state: SiltState) -> datetime | None:
    """When the day being collected can be closed on the clock (None: no day is being collected)."""
    return _end(state.day) + GRACE if state.day is not None else None


def dry_level(rule: SiltRule, state: SiltState) -> float | None:
    """The collected day's dry level so far: its `rule.quantile` quantile, to the mm bin's middle."""
    n = sum(c for _, c in state.bins) + state.over
    if n < MIN_READINGS:
        return None
    rank, seen = max(1, math.ceil(rule.quantile * n)), 0
    for mm, count in state.bins:
        seen += count
        if seen >= rank:
            return mm + 0.5
    assert state.over_from is not None
    return state.over_from + 0.5


def theil_sen(points: list[tuple[float, float]]) -> float:
    """The median of the slopes between every pair of points with distinct x."""
    slopes = [(y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(points) for x2, y2 in points[i + 1 :] if x2 != x1]
    return median(slopes) if slopes else 0.0


# --- the day machine --------------------------------------------------------------------------------


def _count(state: SiltState, mm: int, **also: Any) -> SiltState:
    """Add a reading to the day's bins, merging the highest bins once there are more than MAX_BINS
    (`also`: other fields that change with it)."""
    if state.over_from is not None and mm >= state.over_from:
        return _silt(state, over=state.over + 1, **also)
    bins = state.bins
    i = bisect_left(bins, (mm,))  # (mm,) sorts before (mm, count): the bin's place, found or not
    if i < len(bins) and bins[i][0] == mm:
        bins = (*bins[:i], (mm, bins[i][1] + 1), *bins[i + 1 :])
    else:
        bins = (*bins[:i], (mm, 1), *bins[i:])
    over, over_from = state.over, state.over_from
    while len(bins) > MAX_BINS:
        (top, count), bins = bins[-1], bins[:-1]
        over, over_from = over + count, top
    return _silt(state, bins=bins, over=over, over_from=over_from, **also)


def _close(rule: SiltRule, state: SiltState, out: list[Decision]) -> SiltState:
    """The collected day is over: keep its dry level, learn, and decide (at the day's end)."""
    assert state.day is not None
    level, day, at = dry_level(rule, state), state.day, _end(state.day)
    state = _silt(state, day=None, bins=(), over=0, over_from=None)
    if state.alerted and not state.open:  # a person resolved it: whatever the level is now, start afresh
        state = _silt(state, alerted=False, clean=None, levels=())
    if level is None:
        return state
    state = _silt(state, levels=(*state.levels, (day, round(level, 2)))[-KEEP_DAYS:])
    if state.open and state.clean is not None and level <= state.clean + rule.min_rise_mm / 2:
        out.append(Resolve(at, f"dry level back to {level:.0f} mm, within {rule.min_rise_mm / 2:g} mm of clean"))
        return _silt(state, open=False, alerted=False, clean=None, levels=((day, round(level, 2)),))
    state = _learn(state)
    if not state.open:
        opened = _judge(rule, state, at)
        if opened is not None:
            out.append(opened)
            state = _silt(state, open=True, alerted=True)
    return state


def _learn(state: SiltState) -> SiltState:
    """The clean level: the median of the first CLEAN_DAYS days, then the lowest such median seen since."""
    if len(state.levels) < CLEAN_DAYS:
        return state
    recent = median(v for _, v in state.levels[-CLEAN_DAYS:])
    if state.clean is None:
        return _silt(state, clean=median(v for _, v in state.levels[:CLEAN_DAYS]))
    return _silt(state, clean=min(state.clean, recent))


def _judge(rule: SiltRule, state: SiltState, at: datetime) -> Open | None:
    """Open when the dry level has climbed steadily by enough over the window."""
    if state.clean is None or not state.levels:
        return None
    latest_day, latest = state.levels[-1]
    first = latest_day - timedelta(days=max(1, math.ceil(rule.window.total_seconds() / 86400)) - 1)
    window = [(float((d - latest_day).days), v) for d, v in state.levels if d >= first]
    if len(window) < rule.min_days:
        return None
    slope = theil_sen(window)
    rise = latest - state.clean
    if slope < rule.min_mm_per_day or rise < rule.min_rise_mm:
        return None
    newest = window[len(window) // 2 :]
    if theil_sen(newest) <= 0:  # no longer climbing: water draining away over days, not silt
        return None
    centre = median(v - slope * x for x, v in window)
    misses = sorted(abs(v - slope * x - centre) for x, v in window)
    spread = misses[-2]  # one odd day (a vehicle parked all day) is allowed
    if spread > max(STEADY_MM, slope):  # jumps and falls: storms in a blocked gully, not silt
        return None
    details = {
        "clean_mm": round(state.clean, 2),
        "dry_level_mm": round(latest, 2),
        "rise_mm": round(rise, 2),
        "mm_per_day": round(slope, 2),
        "spread_mm": round(spread, 2),
        "days": [[d.isoformat(), v] for d, v in state.levels if d >= first],
    }
    summary = f"silt: dry level {rise:.0f} mm above clean, rising {slope:.1f} mm/day"
    return Open(at, rule.severity, round(slope, 2), True, summary, details=details)


@lru_cache(maxsize=64)
def _end(day: date) -> datetime:
    """The end of a UTC day (the next midnight). Remembered for the last few days: the engine asks for
    every gully's due time after each of its readings."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
