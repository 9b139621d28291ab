"""Blockage ("not draining"): a storm's recession much slower than this gully's own drain time.

A gully pot is a linear reservoir. Once the rain stops, the water above the outlet invert falls back to
the pot's resting level exponentially, with an e-folding *drain time* of minutes when the outlet is
clear. A blocked outlet makes that time many times longer, and the water a blocked gully still holds is
what floods the road in the next storm. So this evaluator fits the drain time of each recession and
compares it with the drain time the same gully showed in its earlier, clean recessions. Drain time
depends on the gully's own outlet and catchment, so there is no fleet-wide "normal".
`rule.cold_start_drain_time` stands in until `rule.learn_from` recessions are known.

How a recession is read, and why:

- **The resting level** (`dry`) is learned rather than taken to be the registered invert: the
  registered geometry is never exact, and silt raises the floor. It is a slow median tracker fed only
  readings at rest, so storms do not drag it up and a blocked gully's days of standing water do not
  teach it that full is normal. After a cleanse (readings far below it) it falls quickly. A recession
  falls to it, but never to below the invert: water above the outlet drains down to the outlet even
  when a dry spell had left the pot lower.
- **A recession** starts at the last reading at its peak's level. A flat top (water up at the grate,
  a parked vehicle, a stuck sensor) moves the start along rather than counting as a slow fall. A rise
  of more than a few mm above the lowest point since the start (a new rain pulse) begins a new
  recession.
- **The fit** is least squares of ln(excess - resting level) against time, over the recession's points
  above `rule.floor_mm`. It is kept as running sums, so a days-long recession is still only a few
  numbers in the state. Rain still falling after the peak only slows the fall, so the fit can only
  overstate a clean gully's drain time, never understate it.
- **Rain after the peak** can make a clean gully look slow for as long as the rain lasts, and a level
  sensor cannot see rain. So the verdict waits until the recession has lasted `HOLD` x the threshold
  drain time (and at least `rule.min_span`). By then a clean gully has drained, and a blocked one has
  hardly begun to fall. Its newest readings must also still be falling, so a stuck sensor halfway down
  a recession is not taken for a blockage.
- **Learning** takes only recessions that look clean: a fitted drain time no longer than
  `cold_start_drain_time` and not judged slow. A gully blocked from its first storm therefore never
  learns blockage as its normal. The learned drain time is the median of the last `KEEP_TAUS`, so one
  odd storm moves nothing.
- **Bad echoes**: a reading that jumps by more than `SPIKE_MM`, or at an implausible rate, away from
  both of its neighbours, on the same side of both, is dropped. One bad echo then neither ends nor
  starts a recession. The cost is one reading of delay, and only after a jump. A confirmed drop of
  that size, or hours with no readings, breaks a recession: a vehicle driving off, a stuck sensor
  freeing or a gateway coming back hides what the water did meanwhile.

The alert opens once per recession (`value`: the fitted drain time in minutes). It resolves when a later
recession is normal, or when the water gets back to rest within a normal time. Nothing here runs on the
clock: `tick` does nothing and `due` is None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from alerts.decisions import Decision, Open, Resolve
from alerts.evaluators.evolve import evolver
from alerts.evaluators.observations import LevelObs
from alerts.rules import BlockageRule

#: A reading this far (mm) from both of its neighbours, on the same side of both, is a bad echo, not water.
SPIKE_MM = 100.0
#: No gully level moves faster than this (mm/min, i.e. 10 in/min). A step of at least `RATE_MIN_MM` at a
#: faster rate is a jump even when it is under `SPIKE_MM` (readings seconds apart).
MAX_RATE_MM_MIN = 254.0
RATE_MIN_MM = 10.0
#: A reading this close (mm) to the last one is a repeat: no new information, and a stuck sensor sends
#: nothing else (skipped, so a stuck stretch is a gap rather than a flat line in the fit).
STUCK_MM = 1e-6
#: Longer than this without a reading taken as water breaks a recession, and relearns the resting level
#: at rest: the water may have moved on unseen.
MAX_GAP = timedelta(hours=2)
#: A rise this far (mm) above the lowest level since the peak is a new rain pulse. With 1 mm of echo
#: noise, readings differ by a few mm; a new pulse raises the level by far more.
RISE_MM = 6.0
#: Readings within this (mm) of the peak are still at the peak's level: a flat top is no recession, and
#: the newest readings of a recession that is still falling span at least this much.
PLATEAU_MM = 3.0
#: A flat top that lasts this long is where the level rests now (a sensor re-mounted, a vehicle parked
#: for good), and so are readings held this long above the resting level with no event.
PLATEAU_REST = timedelta(hours=12)
#: A recession is judged once it has lasted HOLD x the threshold drain time. Rain after the peak can hold
#: back a clean gully's fall for about as long as the threshold. Measured on simulated four-week runs:
#: no false alarm from 150 clean gullies and 100 silting ones at 1.5, and a false alarm from one clean
#: gully in five at 1.0 (all of them in cold start).
HOLD = 1.5
#: How many clean recessions' drain times are kept for the learned median.
KEEP_TAUS = 8
#: How many of a recession's newest readings are kept for the "still falling" check.
RECENT = 16
#: The resting level moves by `DRY_STEP_MM` per reading at rest, towards the reading: a median tracker
#: fast enough to follow silt (a few mm a day is a fraction of a mm a reading) and too slow for noise to
#: move it. Below it by more than PLATEAU_MM (a cleanse), it falls by a quarter of the difference, at
#: most `DROP_MM` per reading. For its first `WARMUP` readings it takes the lowest, so a first reading
#: taken during a storm is soon forgotten.
DRY_STEP_MM = 0.25
DROP_MM = 5.0
WARMUP = 8

Sums = tuple[float, float, float, float, float]  # n, sum t, sum y, sum t^2, sum t*y
Point = tuple[float, float]  # (minutes since the recession's start, excess mm)
Reading = tuple[datetime, float]  # (time, excess mm)
_NO_SUMS: Sums = (0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class Recession:
    """The water falling after one rain pulse."""

    #: the last reading at the peak's level: time zero of the fit
    start: datetime
    #: the first reading at the peak's level (a flat top lasting PLATEAU_REST is the new resting level)
    top: datetime
    #: the pulse's highest excess (mm)
    peak: float
    #: the level the water falls to, frozen when the event began
    base: float
    #: the lowest excess since the start: a rise of RISE_MM above it is a new pulse
    low: float
    #: the fit's running sums (t: minutes since start, y: ln(excess - base))
    sums: Sums = _NO_SUMS
    #: minutes from the start to the newest reading
    span: float = 0.0
    #: the newest readings, for the "still falling" check
    recent: tuple[Point, ...] = ()
    #: judged slow: an alert opened for it, or one was already open
    slow: bool = False

    @property
    def points(self) -> int:
        return int(self.sums[0])

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "top": self.top.isoformat(),
            "peak": self.peak,
            "base": self.base,
            "low": self.low,
            "sums": list(self.sums),
            "span": self.span,
            "recent": [list(p) for p in self.recent],
            "slow": self.slow,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recession | None:
        start = _time(data.get("start"))
        peak, base, low = _num(data.get("peak")), _num(data.get("base")), _num(data.get("low"))
        if start is None or peak is None or base is None or low is None:
            return None
        raw = data.get("sums")
        sums = [float(v) for v in raw] if isinstance(raw, list) and len(raw) == 5 else list(_NO_SUMS)
        recent = data.get("recent")
        return cls(
            start=start,
            top=_time(data.get("top")) or start,
            peak=peak,
            base=base,
            low=low,
            sums=(sums[0], sums[1], sums[2], sums[3], sums[4]),
            span=_num(data.get("span")) or 0.0,
            recent=tuple((float(p[0]), float(p[1])) for p in recent if len(p) == 2) if isinstance(recent, list) else (),
            slow=bool(data.get("slow")),
        )


@dataclass(frozen=True, slots=True)
class BlockageState:
    """What the blockage rule remembers for one gully (well under 2 KB as JSON)."""

    #: this rule has an alert open for the gully. The engine sets it False when a person resolves the
    #: alert: the recession that opened it stays judged (no reopening), and the next one is judged afresh.
    open: bool = False
    #: the newest reading time seen: older readings (backfill) never move the live state
    last: datetime | None = None
    #: the last reading taken as water
    prev: Reading | None = None
    #: a reading that jumped away from `prev`, waiting for the next one to say whether it was water
    held: Reading | None = None
    #: the learned resting excess (mm), and how many readings at rest taught it (up to WARMUP)
    dry: float | None = None
    rest_n: int = 0
    #: since when readings with no event on have stayed above the resting level, and the lowest of them
    above: Reading | None = None
    #: drain times (minutes) of the last clean recessions, oldest first
    taus: tuple[float, ...] = ()
    #: the water above rest now, if any
    rec: Recession | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "open": self.open,
            "last": _iso(self.last),
            "prev": _reading_json(self.prev),
            "held": _reading_json(self.held),
            "dry": self.dry,
            "rest_n": self.rest_n,
            "above": _reading_json(self.above),
            "taus": list(self.taus),
            "rec": self.rec.to_json() if self.rec is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BlockageState:
        rec, taus = data.get("rec"), data.get("taus")
        return cls(
            open=bool(data.get("open")),
            last=_time(data.get("last")),
            prev=_reading(data.get("prev")),
            held=_reading(data.get("held")),
            dry=_num(data.get("dry")),
            rest_n=int(data.get("rest_n") or 0),
            above=_reading(data.get("above")),
            taus=tuple(float(t) for t in taus)[-KEEP_TAUS:] if isinstance(taus, list) else (),
            rec=Recession.from_json(rec) if isinstance(rec, dict) else None,
        )


#: `evolve` for the two states, bound once (alerts/evaluators/evolve.py): a copy every reading.
_blockage = evolver(BlockageState)
_recession = evolver(Recession)


def learned(rule: BlockageRule, state: BlockageState) -> float | None:
    """The gully's normal drain time (minutes), once `rule.learn_from` clean recessions are known."""
    return median(state.taus) if len(state.taus) >= rule.learn_from else None


def threshold(rule: BlockageRule, state: BlockageState) -> float:
    """The drain time (minutes) above which a recession is slow: `factor` x the learned drain time, or
    the cold-start drain time until one is learned."""
    normal = learned(rule, state)
    return rule.factor * normal if normal is not None else _minutes(rule.cold_start_drain_time)


def observe(rule: BlockageRule, state: BlockageState, obs: LevelObs) -> tuple[BlockageState, list[Decision]]:
    """Take one reading. Readings with no echo, tilted ones (the distance is on the slant), repeats and
    older ones are skipped. A jump is held until the next reading shows whether it was water."""
    if state.last is not None and obs.at <= state.last:
        return state, []
    if obs.excess_mm is None or obs.tilted:
        return _blockage(state, last=obs.at), []
    point = (obs.at, obs.excess_mm)
    newest = state.held or state.prev
    if newest is not None and abs(point[1] - newest[1]) < STUCK_MM:
        return _blockage(state, last=obs.at), []
    out: list[Decision] = []
    if state.held is not None:
        held, state = state.held, _blockage(state, held=None, last=obs.at)
        if not (state.prev is not None and _jump(state.prev, held) * _jump(point, held) > 0):
            state = _accept(rule, state, held, out, jumped=True)
        # else it is away from both neighbours on the same side: a bad echo, dropped
        if state.prev is not None and _jump(state.prev, point) != 0:
            return _blockage(state, held=point), out
        return _accept(rule, state, point, out), out
    if state.prev is not None and _jump(state.prev, point) != 0:
        return _blockage(state, held=point, last=obs.at), out
    return _accept(rule, state, point, out, last=obs.at), out  # `last` in the copy _accept makes anyway


def tick(rule: BlockageRule, state: BlockageState, now: datetime) -> tuple[BlockageState, list[Decision]]:
    """Nothing here runs on the clock: a recession is judged on its readings."""
    return state, []


def due(rule: BlockageRule, state: BlockageState) -> datetime | None:
    """Never: see `tick`."""
    return None


# --- the recession machine --------------------------------------------------------------------------


def _accept(
    rule: BlockageRule,
    state: BlockageState,
    point: Reading,
    out: list[Decision],
    *,
    jumped: bool = False,
    last: datetime | None = None,
) -> BlockageState:
    """Take a reading as water. It is either rest or a step of the current event. `jumped`: the reading
    jumped from the one before and the next reading confirmed it. `last`: the newest reading time, to
    set in the same copy (None: already set)."""
    at, x = point
    gap = state.prev is not None and at - state.prev[0] > MAX_GAP
    state = _blockage(state, prev=point) if last is None else _blockage(state, prev=point, last=last)
    rec = state.rec
    if rec is None:
        if gap:
            state = _blockage(state, dry=None, rest_n=0, above=None)
        if state.dry is not None and x - _base(state.dry) >= rule.min_peak_mm:
            return _blockage(state, rec=_begin(at, x, _base(state.dry)), above=None)
        return _rest(rule, state, at, x)
    if gap or (jumped and x < rec.low):  # what came before is no evidence of how it drains
        if x - rec.base <= rule.floor_mm:
            return _rest(rule, _blockage(state, rec=None), at, x)
        return _blockage(state, rec=_begin(at, x, rec.base))
    if x - rec.base <= rule.floor_mm:  # back at rest: the recession is over
        return _rest(rule, _finish(rule, _blockage(state, rec=None), rec, at, out), at, x)
    rising = x > rec.low + RISE_MM
    if rising and x < rec.peak - PLATEAU_MM:
        return _blockage(state, rec=_begin(at, x, rec.base))  # a new rain pulse: a new recession
    if rising or x >= rec.peak - PLATEAU_MM:  # still at the peak's level: time zero moves on
        top = at if x > rec.peak + PLATEAU_MM else rec.top
        if at - top >= PLATEAU_REST and not rec.slow:
            return _blockage(state, rec=None, dry=x, rest_n=WARMUP, above=None)
        return _blockage(state, rec=_begin(at, x, rec.base, peak=max(rec.peak, x), top=top))
    t = _minutes(at - rec.start)
    rec = _recession(
        rec,
        low=min(rec.low, x),
        sums=_add(rec.sums, t, x - rec.base),
        span=t,
        recent=(*rec.recent, (round(t, 2), round(x, 2)))[-RECENT:],
    )
    return _judge(rule, _blockage(state, rec=rec), at, out)


def _base(dry: float) -> float:
    """The level a recession falls to: the resting level, but never below the outlet invert."""
    return max(dry, 0.0)


def _begin(at: datetime, x: float, base: float, *, peak: float | None = None, top: datetime | None = None) -> Recession:
    """A recession starting with the reading (at, x)."""
    return Recession(
        start=at,
        top=top or at,
        peak=x if peak is None else peak,
        base=base,
        low=x,
        sums=_add(_NO_SUMS, 0.0, x - base),
        recent=((0.0, round(x, 2)),),
    )


def _rest(rule: BlockageRule, state: BlockageState, at: datetime, x: float) -> BlockageState:
    """A reading with no event on: it teaches the resting level, if it is near it.

    Readings more than `floor_mm` above the level teach nothing: they are water still draining.
    Readings held up there for PLATEAU_REST are where the gully rests now (a geometry change, silt
    that rose while nothing was learned), and the level moves to the lowest of them."""
    if state.dry is None:
        return _blockage(state, dry=x, rest_n=1, above=None)
    if state.rest_n < WARMUP:
        return _blockage(state, dry=min(state.dry, x), rest_n=state.rest_n + 1, above=None)
    if x > state.dry + rule.floor_mm:
        since, low = state.above if state.above is not None else (at, x)
        if at - since >= PLATEAU_REST:
            return _blockage(state, dry=min(low, x), above=None)
        return _blockage(state, above=(since, min(low, x)))
    below = state.dry - x
    if below > PLATEAU_MM:
        step = -min(DROP_MM, below / 4)
    else:
        step = DRY_STEP_MM if x > state.dry else -DRY_STEP_MM if x < state.dry else 0.0
    return _blockage(state, dry=state.dry + step, above=None)


def _judge(rule: BlockageRule, state: BlockageState, at: datetime, out: list[Decision]) -> BlockageState:
    """A recession still falling: open once it has been slow for long enough."""
    rec = state.rec
    assert rec is not None
    tau = _slow(rule, state, rec)
    if tau is None:
        return state
    state = _blockage(state, rec=_recession(rec, slow=True))
    if state.open:  # an earlier slow recession's alert is still open: this one keeps it open
        return state
    limit, normal = threshold(rule, state), learned(rule, state)
    shown = "no fall at all" if math.isinf(tau) else f"drain time {tau:.0f} min"
    against = f"{normal:.0f} min normally" if normal is not None else "no normal learned yet"
    details = {
        "drain_time_min": _round(tau) if math.isfinite(tau) else None,
        "learned_drain_time_min": _round(normal) if normal is not None else None,
        "threshold_min": _round(limit),
        "learned_from": len(state.taus),
        "peak_mm": _round(rec.peak),
        "dry_mm": _round(rec.base),
        "points": rec.points,
        "span_min": _round(rec.span),
        "recession_start": rec.start.isoformat(),
    }
    value = tau if math.isfinite(tau) else None
    out.append(Open(at, rule.severity, value, True, f"not draining: {shown} ({against})", details=details))
    return _blockage(state, open=True)


def _slow(rule: BlockageRule, state: BlockageState, rec: Recession) -> float | None:
    """The recession's fitted drain time (minutes) if it shows that the gully is not draining, else None.

    That takes a fit slower than the threshold over at least HOLD x the threshold, with the newest
    readings still falling."""
    if rec.slow or rec.peak - rec.base < rule.min_peak_mm or rec.points < rule.min_points:
        return None
    limit = threshold(rule, state)
    if rec.span < max(_minutes(rule.min_span), HOLD * limit) or not _falling(rule, rec):
        return None
    tau = _tau(rec.sums)
    return tau if tau is not None and tau > limit else None


def _finish(
    rule: BlockageRule, state: BlockageState, rec: Recession, at: datetime, out: list[Decision]
) -> BlockageState:
    """A recession has ended (`at`: the first reading back at rest) without being judged slow. If it
    was clean, learn from it; if it was normal, resolve on it.

    A recession that ends before it could be judged is not judged slow after the fact: it ended within
    HOLD x the threshold, so rain may have stretched its drain time. A flat top that ends in one drop
    (a vehicle driving off) says nothing at all."""
    if rec.slow or rec.peak - rec.base < rule.min_peak_mm:
        return state
    limit = threshold(rule, state)
    fits = rec.points >= rule.min_points and rec.span >= _minutes(rule.min_span)
    tau = _tau(rec.sums) if fits else None
    if tau is not None:
        normal = tau <= limit
    elif rec.points < 2 and rec.start > rec.top:
        return state
    else:  # too quick to fit: the time it took to get back to rest says how it drained
        normal = _minutes(at - rec.start) <= limit * math.log(max(rec.peak - rec.base, rule.floor_mm) / rule.floor_mm)
    if not normal:
        return state
    if tau is not None and tau <= _minutes(rule.cold_start_drain_time):
        state = _blockage(state, taus=(*state.taus, _round(tau))[-KEEP_TAUS:])
    if state.open:
        shown = f"drain time {tau:.0f} min" if tau is not None else "back to rest in a normal time"
        out.append(Resolve(at, f"draining again: {shown}"))
        state = _blockage(state, open=False)
    return state


def _falling(rule: BlockageRule, rec: Recession) -> bool:
    """The newest readings (those within `min_span`, or at least `min_points` of them) span more than
    a flat plateau."""
    newest = rec.recent[-1][0]
    window = [x for t, x in rec.recent if newest - t <= _minutes(rule.min_span)]
    if len(window) < rule.min_points:
        window = [x for _, x in rec.recent[-rule.min_points :]]
    return max(window) - min(window) >= PLATEAU_MM


# --- arithmetic -------------------------------------------------------------------------------------


def _add(sums: Sums, t: float, above: float) -> Sums:
    n, st, sy, stt, sty = sums
    y = math.log(above)
    return (n + 1, st + t, sy + y, stt + t * t, sty + t * y)


def _tau(sums: Sums) -> float | None:
    """The e-folding time (minutes) of the least-squares line through (t, ln(excess - base)). It is inf
    for a line that does not fall, and None without two distinct times."""
    n, st, sy, stt, sty = sums
    sxx = n * stt - st * st
    if n < 2 or sxx <= 1e-9 * max(1.0, n * stt):
        return None
    slope = (n * sty - st * sy) / sxx
    return -1.0 / slope if slope < 0 else math.inf


def _jump(a: Reading, b: Reading) -> int:
    """+1 or -1 when b is a jump up or down from a (more than SPIKE_MM, or at an implausible rate), else 0."""
    diff = b[1] - a[1]
    rate_limit = MAX_RATE_MM_MIN * abs(_minutes(b[0] - a[0]))
    big = abs(diff) > SPIKE_MM or (abs(diff) > RATE_MIN_MM and abs(diff) > rate_limit)
    return (1 if diff > 0 else -1) if big else 0


def _minutes(value: timedelta) -> float:
    return value.total_seconds() / 60


def _round(value: float) -> float:
    return round(value, 2)


# --- JSON -------------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _reading_json(value: Reading | None) -> list[Any] | None:
    return [value[0].isoformat(), value[1]] if value is not None else None


def _reading(value: Any) -> Reading | None:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        x = _num(value[1])
        return (datetime.fromisoformat(value[0]), x) if x is not None else None
    return None
