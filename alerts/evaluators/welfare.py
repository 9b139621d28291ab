"""Welfare in a care flat, learned from the flat's own sensors: a quiet spell in the day, a long stay
in the bathroom, activity about the flat at night (`WelfareRule`, one behaviour per `watch`).

Nobody's routine is the default one, so each flat is judged against itself: the evaluator keeps a
short history of what the flat's longest ordinary spells were, and alerts on `factor` times that
(never under the rule's minimum, which alone applies until `learn_days` days are known).

Design choices, and why:

- Clock hours are UTC (the rule's `day` and `night` windows, and the hour-of-day slots learned), so a
  flat's baseline does not jump twice a year; in a UK winter UTC is local time. A window `(a, b)` is
  the hours `a` <= hour < `b`; `a` > `b` wraps past midnight (`(22, 6)`); `(0, 24)` is all day and
  `a` == `b` no hours at all.
- "Usual" is a high order statistic of a short history (`_usual`): the top value (the top two from 28
  values) is dropped, so one bad day never teaches that the bad day is normal, while a habit seen on
  most days (an afternoon nap, a long bath) is learned.
- An episode that opened an alert teaches only up to the line it crossed (a quiet spell is learned as
  ending at its alert, a bathroom visit as lasting its threshold, a night's peak as the count that
  alerted). A habit that keeps crossing the line still gets learned, the line moving up by about
  `factor` per repeat, but a recurring real problem (wandering twice a fortnight) does not blind the
  detector at a stroke.
- Clock-decided opens are dated when the line was crossed (last activity + threshold), not when the
  clock noticed. `observe` runs the clock up to each reading first, so a batch replayed from history
  opens and resolves the same alerts as the live feed did.
- Quiet is only alerted on while the flat is heard from (any reading within `SILENT` of the line):
  when every sensor is silent the quiet was not observed, and that is the offline rules' alert.
- A person resolving the alert (the engine sets `open` False) ends the alerting but not the episode:
  `alerted` stays set until the episode ends (new activity, the bathroom vacated, a quiet `window` at
  night), so the same episode is never reopened.
- Readings older than the newest seen (backfill) change nothing: the live state has moved on, and a
  welfare alert about the past helps no one.

Falls are not handled here (the radar's own alarm is a `device_alarm` rule).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from alerts.decisions import Decision, Open, Resolve
from alerts.evaluators.evolve import evolve
from alerts.evaluators.observations import RoomObs
from alerts.rules import WelfareRule

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
#: days of history kept per learned slot: a fortnight for the day's quiet spells and the nights
#: (spans two of each weekday), four weeks for the bathroom (a weekly bath is seen four times).
QUIET_DAYS = 14
NIGHTS = 14
BATH_DAYS = 28
#: a line crossed this long after the flat's newest reading of any kind is not judged (yet): the
#: quiet was not observed. Longer than the slowest heartbeat in a flat (the WS202 PIR, hourly).
SILENT = timedelta(minutes=90)
#: night events remembered for the sliding window; a count this high is far past any threshold
MAX_EVENTS = 240
#: rooms where being up at night is ordinary (bed, the en-suite)
NIGHT_ROOMS = frozenset({"bedroom", "bathroom"})
BATHROOM = "bathroom"
#: the learned slot names for the bathroom's daily longest visit and the night's peak count
VISIT = "visit"
PEAK = "peak"


@dataclass(frozen=True, slots=True)
class WelfareState:
    """What one welfare rule remembers about one flat. Only the fields of the rule's `watch` are used.

    The dicts are never changed in place: every step builds new ones."""

    #: this rule has an alert open for the flat (the engine sets it False when a person resolves it)
    open: bool = False
    #: the newest data time seen; older readings are backfill and ignored
    last: datetime | None = None
    #: UTC dates completed with data (how much the baseline has seen, against `learn_days`)
    days: int = 0
    #: inactivity: the last activity (the quiet spell's start); bathroom: when the visit began
    since: datetime | None = None
    #: the device the alert would be shown on: of the last activity, the bathroom, the last night event
    device: str | None = None
    #: inactivity: the room last seen occupied (occupancy in another room is a move)
    room: str | None = None
    #: inactivity: the bedroom radar's last in-bed flag (getting into or out of bed is a move)
    in_bed: bool | None = None
    #: when the current episode's alert was opened (kept after a person resolves it: no reopening)
    alerted: datetime | None = None
    #: night: epoch seconds of the events inside the last `window`
    events: tuple[int, ...] = ()
    #: night: the newest event of the current episode
    last_event: datetime | None = None
    #: the learning period (ISO date of the day window, visit day or night) `today` accumulates
    key: str | None = None
    #: running maxima for `key`: minutes per hour slot ("0".."23"), the longest visit, the night's peak
    today: dict[str, int] = field(default_factory=dict)
    #: completed periods' maxima per slot, oldest first
    usual: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "open": self.open,
            "last": _iso(self.last),
            "days": self.days,
            "since": _iso(self.since),
            "device": self.device,
            "room": self.room,
            "in_bed": self.in_bed,
            "alerted": _iso(self.alerted),
            "events": list(self.events),
            "last_event": _iso(self.last_event),
            "key": self.key,
            "today": dict(self.today),
            "usual": {slot: list(values) for slot, values in self.usual.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WelfareState:
        """The stored state; `{}` (or any key missing or malformed) gives the fresh default."""
        in_bed = data.get("in_bed")
        today = data.get("today")
        usual = data.get("usual")
        events = data.get("events")
        return cls(
            open=bool(data.get("open")),
            last=_time(data.get("last")),
            days=_int(data.get("days")),
            since=_time(data.get("since")),
            device=_str(data.get("device")),
            room=_str(data.get("room")),
            in_bed=in_bed if isinstance(in_bed, bool) else None,
            alerted=_time(data.get("alerted")),
            events=tuple(_ints(events)),
            last_event=_time(data.get("last_event")),
            key=_str(data.get("key")),
            today={str(k): _int(v) for k, v in today.items()} if isinstance(today, dict) else {},
            usual={str(k): tuple(_ints(v)) for k, v in usual.items()} if isinstance(usual, dict) else {},
        )


def observe(rule: WelfareRule, state: WelfareState, obs: RoomObs) -> tuple[WelfareState, list[Decision]]:
    """One reading from any sensor in the flat, in time order. The clock is run up to the reading
    first (what was due before it is decided as of then), then the reading is judged."""
    if state.last is not None and obs.at < state.last:
        return state, []
    state, out = _advance(rule, state, obs.at, strict=True)
    days = state.days
    if state.last is not None and _utc(obs.at).date() > _utc(state.last).date():
        days = min(days + 1, 99_999)
    state = evolve(state, last=obs.at, days=days)
    if rule.watch == "inactivity":
        state, more = _observe_quiet(rule, state, obs)
    elif rule.watch == "bathroom_dwell":
        state, more = _observe_bathroom(rule, state, obs)
    else:
        state, more = _observe_night(rule, state, obs)
    return state, out + more


def tick(rule: WelfareRule, state: WelfareState, now: datetime) -> tuple[WelfareState, list[Decision]]:
    """The clock at `now`: open a quiet spell or a bathroom visit that has passed its threshold, resolve
    night activity that has stopped for `window`. Decisions are dated when the line was crossed."""
    return _advance(rule, state, now, strict=False)


def due(rule: WelfareRule, state: WelfareState) -> datetime | None:
    """The earliest time `tick` could decide something with no new data (None: nothing pending).

    A quiet spell or a bathroom visit is only judged while the flat's sensors are heard from: if
    nothing at all arrived in the `SILENT` before the line, the quiet was not observed (a gateway
    down, sensors flat: the offline rule's business) and nothing is due until data comes again."""
    if rule.watch == "night_activity":
        return state.last_event + rule.window if state.open and state.last_event is not None else None
    if state.open or state.alerted is not None or state.since is None or state.last is None:
        return None
    if rule.watch == "inactivity":
        crossing = _quiet_crossing(rule, state)
        if crossing is None:
            return None
        at = crossing[0]
    else:
        at = state.since + _dwell_threshold(rule, state)[0]
    return at if at - state.last <= SILENT else None


def _advance(
    rule: WelfareRule, state: WelfareState, now: datetime, *, strict: bool
) -> tuple[WelfareState, list[Decision]]:
    """Decide what the clock alone decides by `now`. `strict`: before a reading at `now` (a threshold
    met exactly at the reading is left to the reading, which may be the activity that ends it)."""
    if rule.watch == "night_activity":
        if state.last_event is None or now < state.last_event + rule.window:
            return state, []
        end = state.last_event + rule.window
        out: list[Decision] = []
        if state.open:
            out.append(Resolve(end, f"no activity outside the bedroom and bathroom for {_minutes(rule.window)} min"))
        return evolve(state, open=False, alerted=None, events=(), last_event=None), out
    at = due(rule, state)
    if at is None or at > now or (strict and at == now):
        return state, []
    if rule.watch == "inactivity":
        return _open_quiet(rule, state)
    return _open_bathroom(rule, state, at)


# --- inactivity ---------------------------------------------------------------------------------------


def _observe_quiet(rule: WelfareRule, state: WelfareState, obs: RoomObs) -> tuple[WelfareState, list[Decision]]:
    """Activity is motion, a move to another room (occupancy there), or getting into or out of bed;
    presence alone is not (someone collapsed in a chair is present). Activity ends the quiet spell:
    the spell is learned, an open alert resolves, and the next spell starts."""
    if state.since is None:  # the flat's first reading: quiet is counted from here
        state = evolve(state, since=obs.at, device=obs.device_id)
    moved = bool(obs.occupied) and obs.room is not None and state.room is not None and obs.room != state.room
    bed_change = obs.in_bed is not None and state.in_bed is not None and obs.in_bed != state.in_bed
    room = obs.room if obs.occupied and obs.room is not None else state.room
    in_bed = obs.in_bed if obs.in_bed is not None else state.in_bed
    state = evolve(state, room=room, in_bed=in_bed)
    if not (obs.active or moved or bed_change):
        return state, []
    assert state.since is not None
    # an alerted spell teaches only up to its alert: how far past the line it went is not "usual"
    end = min(obs.at, state.alerted) if state.alerted is not None else obs.at
    state = _learn_quiet(rule, state, state.since, end)
    out: list[Decision] = []
    if state.open:
        out.append(Resolve(max(obs.at, state.alerted or obs.at), "activity seen again"))
    return evolve(state, since=obs.at, device=obs.device_id, alerted=None, open=False), out


def _open_quiet(rule: WelfareRule, state: WelfareState) -> tuple[WelfareState, list[Decision]]:
    crossing = _quiet_crossing(rule, state)
    assert crossing is not None and state.since is not None
    at, start, threshold, usual = crossing
    minutes = _minutes(threshold)
    summary = f"no activity in the day for {minutes} min (last seen {_hhmm(state.since)} UTC)"
    details: dict[str, Any] = {
        "watch": rule.watch,
        "last_activity": state.since.isoformat(),
        "quiet_from": start.isoformat(),
        "quiet_min": minutes,
        "threshold_min": minutes,
        "usual_min": usual,
        "learned": usual is not None,
        "day_hours": list(rule.day),
        "days_known": state.days,
    }
    decision = Open(at, rule.severity, float(minutes), True, summary, device_id=state.device, details=details)
    return evolve(state, open=True, alerted=at), [decision]


def _quiet_crossing(rule: WelfareRule, state: WelfareState) -> tuple[datetime, datetime, timedelta, int | None] | None:
    """When the current quiet spell crosses its line: (the moment, where its daytime part began, the
    threshold, the usual it came from). Only the spell's part inside a day window counts, so the
    night's sleep never does; the window the spell began in is tried, then the next (a full one).
    Day windows end at their edge, so a spell is judged within one window, except for an all-day
    window (`(0, 24)`), which has no edge."""
    start, length = _window(rule.day)
    if state.since is None or length == 0:
        return None
    if length == 24:  # every hour is day: no window edge cuts the spell
        found = _quiet_crossing_in(rule, state, state.since, state.since + 2 * DAY)
        return (found[0], state.since, found[1], found[2]) if found is not None else None
    ws = _window_start(state.since, start)
    for _ in range(2):
        we = ws + timedelta(hours=length)
        begin = max(state.since, ws)
        if begin < we:
            found = _quiet_crossing_in(rule, state, begin, we)
            if found is not None:
                return found[0], begin, found[1], found[2]
        ws += DAY
    return None


def _quiet_crossing_in(
    rule: WelfareRule, state: WelfareState, begin: datetime, end: datetime
) -> tuple[datetime, timedelta, int | None] | None:
    """The first moment a spell quiet since `begin` has lasted the threshold of the hours it has
    covered (the threshold only grows as it covers more hours, so this converges), before `end`."""
    threshold, usual = _quiet_threshold(rule, state, [_utc(begin).hour])
    while True:
        at = begin + threshold
        if at >= end:
            return None
        wider, wider_usual = _quiet_threshold(rule, state, _hours(begin, at))
        if wider <= threshold:
            return at, threshold, usual
        threshold, usual = wider, wider_usual


def _quiet_threshold(rule: WelfareRule, state: WelfareState, hours: Iterable[int]) -> tuple[timedelta, int | None]:
    """`factor` x the longest usual quiet spell in any of `hours` (at least `min_for`); `min_for`
    alone until `learn_days` days are known or while none of the hours has a history yet."""
    if state.days < rule.learn_days:
        return rule.min_for, None
    known = [u for h in hours if (u := _usual(state.usual.get(str(h), ()))) is not None]
    if not known:
        return rule.min_for, None
    usual = max(known)
    return max(rule.min_for, timedelta(minutes=rule.factor * usual)), usual


def _learn_quiet(rule: WelfareRule, state: WelfareState, begin: datetime, end: datetime) -> WelfareState:
    """Record the quiet spell [begin, end): in each day window it overlaps, its part inside the window,
    as that day's longest spell for every hour slot the part touches. A part filling a whole window
    (nobody home, sensors down) is not an ordinary day and is not learned."""
    start, length = _window(rule.day)
    if length == 0 or end <= begin:
        return state
    key, today, usual = state.key, dict(state.today), dict(state.usual)
    ws = _window_start(begin, start)
    while ws < end:
        we = ws + timedelta(hours=length)
        lo, hi = max(begin, ws), min(end, we)
        day_key = (ws - timedelta(hours=start)).date().isoformat()
        if lo < hi and not (lo == ws and hi == we) and (key is None or day_key >= key):
            if day_key != key:
                usual, today, key = _push(usual, today, QUIET_DAYS), {}, day_key
            minutes = round((hi - lo) / timedelta(minutes=1))
            for h in _hours(lo, hi):
                today[str(h)] = max(today.get(str(h), 0), minutes)
        ws += DAY
    return evolve(state, key=key, today=today, usual=usual)


# --- bathroom dwell -----------------------------------------------------------------------------------


def _observe_bathroom(rule: WelfareRule, state: WelfareState, obs: RoomObs) -> tuple[WelfareState, list[Decision]]:
    """A visit runs from the bathroom sensor's occupied to its vacant; a second bathroom sensor while
    one visit is running is ignored (one visit at a time is what the alert is about)."""
    if obs.room != BATHROOM or obs.occupied is None:
        return state, []
    if obs.occupied:
        if state.since is None:
            return evolve(state, since=obs.at, device=obs.device_id, alerted=None), []
        return state, []
    if state.since is None or obs.device_id != state.device:
        return state, []
    end = min(obs.at, state.alerted) if state.alerted is not None else obs.at
    state = _learn_visit(state, state.since, end)
    out: list[Decision] = []
    if state.open:
        out.append(Resolve(max(obs.at, state.alerted or obs.at), "the bathroom is vacant again"))
    return evolve(state, since=None, alerted=None, open=False), out


def _open_bathroom(rule: WelfareRule, state: WelfareState, at: datetime) -> tuple[WelfareState, list[Decision]]:
    assert state.since is not None
    threshold, usual = _dwell_threshold(rule, state)
    minutes = _minutes(threshold)
    summary = f"bathroom occupied for {minutes} min (since {_hhmm(state.since)} UTC)"
    details: dict[str, Any] = {
        "watch": rule.watch,
        "occupied_since": state.since.isoformat(),
        "occupied_min": minutes,
        "threshold_min": minutes,
        "usual_min": usual,
        "learned": usual is not None,
        "days_known": state.days,
    }
    decision = Open(at, rule.severity, float(minutes), True, summary, device_id=state.device, details=details)
    return evolve(state, open=True, alerted=at), [decision]


def _dwell_threshold(rule: WelfareRule, state: WelfareState) -> tuple[timedelta, int | None]:
    """`factor` x the usual longest visit of a day (at least `min_for`); `min_for` until learned."""
    usual = _usual(state.usual.get(VISIT, ())) if state.days >= rule.learn_days else None
    if usual is None:
        return rule.min_for, None
    return max(rule.min_for, timedelta(minutes=rule.factor * usual)), usual


def _learn_visit(state: WelfareState, begin: datetime, end: datetime) -> WelfareState:
    """The day's longest visit (by the UTC date it began): per day rather than per visit, so that a
    bath every few days is still a large share of the history, however many short visits there are."""
    key = _utc(begin).date().isoformat()
    usual, today = dict(state.usual), dict(state.today)
    if state.key is not None and key < state.key:
        return state
    if key != state.key:
        usual, today = _push(usual, today, BATH_DAYS), {}
    minutes = max(0, round((end - begin) / timedelta(minutes=1)))
    today[VISIT] = max(today.get(VISIT, 0), minutes)
    return evolve(state, key=key, today=today, usual=usual)


# --- night activity -----------------------------------------------------------------------------------


def _observe_night(rule: WelfareRule, state: WelfareState, obs: RoomObs) -> tuple[WelfareState, list[Decision]]:
    """At night, motion or occupancy outside the bedroom and bathroom is an event (a room not
    registered counts for nothing: it might be the bedroom). Events within a sliding `window` are
    counted; the night's highest count is learned, and reaching the threshold opens."""
    start, length = _window(rule.night)
    if length == 0:
        return state, []
    ws = _window_start(obs.at, start)
    key = (ws - timedelta(hours=start)).date().isoformat()
    if state.key is not None and key != state.key:
        state = evolve(state, usual=_push(dict(state.usual), state.today, NIGHTS), today={})
    state = evolve(state, key=key)
    if not obs.at < ws + timedelta(hours=length):
        return state, []
    if PEAK not in state.today:  # a night with data: learned even if nothing happens (a peak of 0)
        state = evolve(state, today={**state.today, PEAK: 0})
    event = obs.room is not None and obs.room not in NIGHT_ROOMS and (obs.active or obs.occupied is True)
    if not event:
        return state, []
    t = int(obs.at.timestamp())
    cutoff = t - int(rule.window.total_seconds())
    events = (*(e for e in state.events if e > cutoff), t)[-MAX_EVENTS:]
    count = len(events)
    state = evolve(state, events=events, last_event=obs.at, device=obs.device_id)
    threshold, usual = _night_threshold(rule, state)
    if state.alerted is None:  # an alerted episode teaches only the count that alerted
        state = evolve(state, today={**state.today, PEAK: max(state.today.get(PEAK, 0), min(count, threshold))})
    if state.alerted is not None or state.open or count < threshold:
        return state, []
    window = _minutes(rule.window)
    summary = f"{count} activity events outside the bedroom and bathroom within {window} min at night"
    details: dict[str, Any] = {
        "watch": rule.watch,
        "events": count,
        "window_min": window,
        "threshold_events": threshold,
        "usual_events": usual,
        "learned": usual is not None,
        "room": obs.room,
        "night_hours": list(rule.night),
        "days_known": state.days,
    }
    decision = Open(obs.at, rule.severity, float(count), True, summary, device_id=obs.device_id, details=details)
    return evolve(state, open=True, alerted=obs.at), [decision]


def _night_threshold(rule: WelfareRule, state: WelfareState) -> tuple[int, int | None]:
    """`factor` x the usual night's peak count (at least `min_events`); `min_events` until learned."""
    usual = _usual(state.usual.get(PEAK, ())) if state.days >= rule.learn_days else None
    if usual is None:
        return rule.min_events, None
    return max(rule.min_events, math.ceil(round(rule.factor * usual, 6))), usual


# --- shared -------------------------------------------------------------------------------------------


def _usual(values: Sequence[int]) -> int | None:
    """A robust "usual maximum": the top value dropped (the top two from 28 or more), so one bad day is
    never the norm. None with fewer than two values (no robust estimate yet)."""
    if len(values) < 2:
        return None
    ordered = sorted(values)
    return ordered[len(ordered) - 1 - max(1, len(ordered) // 14)]


def _push(usual: dict[str, tuple[int, ...]], today: Mapping[str, int], keep: int) -> dict[str, tuple[int, ...]]:
    """The finished period's maxima appended to each slot's history, the oldest beyond `keep` dropped."""
    out = dict(usual)
    for slot, value in today.items():
        out[slot] = (*out.get(slot, ()), value)[-keep:]
    return out


def _window(hours: tuple[int, int]) -> tuple[int, int]:
    """(start hour, length in hours) of a `(from, to)` UTC window; `to` < `from` wraps past midnight."""
    a, b = hours
    if a == b:
        return a % 24, 0
    return a % 24, (b - a) % 24 or 24


def _window_start(at: datetime, start: int) -> datetime:
    """The start of the latest window (starting at hour `start` UTC) that began at or before `at`."""
    day: date = (_utc(at) - timedelta(hours=start)).date()
    return datetime.combine(day, time(), tzinfo=UTC) + timedelta(hours=start)


def _hours(begin: datetime, end: datetime) -> Iterator[int]:
    """The UTC hours of day that [begin, end) overlaps."""
    t = _utc(begin).replace(minute=0, second=0, microsecond=0)
    seen = 0
    while t < end and seen < 24:
        yield t.hour
        t += HOUR
        seen += 1


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def _hhmm(at: datetime) -> str:
    return _utc(at).strftime("%H:%M")


def _minutes(value: timedelta) -> int:
    return round(value / timedelta(minutes=1))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _ints(value: Any) -> list[int]:
    return [v for v in value if isinstance(v, int) and not isinstance(v, bool)] if isinstance(value, list) else []
