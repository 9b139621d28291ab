"""Welfare in a care flat: quiet days, long bathroom stays and night wandering alert at the right data
times against the flat's own learned normal; ordinary days, naps, baths and en-suite visits do not;
restarts, person-resolved alerts and backfill change nothing."""

from __future__ import annotations

import bisect
import json
import random
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.decisions import Decision, Open, Resolve
from alerts.evaluators.observations import RoomObs
from alerts.evaluators.welfare import WelfareState, due, observe, tick
from alerts.rules import WelfareRule, parse_rules

DAY0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday, midnight UTC
DEV = {room: f"flat-{room}" for room in ("bedroom", "bathroom", "hall", "kitchen", "living")}
#: each sensor's periodic report interval (minutes) and its offset in the hour
PERIODIC = {"living": (10, 3), "bedroom": (20, 7), "bathroom": (30, 11), "kitchen": (30, 17), "hall": (60, 29)}
MOVING = {"sit", "walk", "wander", "up", "wash", "meal"}


def m(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


def at(day: int, hh: int, mm: float = 0) -> datetime:
    return DAY0 + timedelta(days=day, hours=hh) + m(mm)


def rule(watch: str, **fields: Any) -> WelfareRule:
    return WelfareRule.model_validate(
        {"name": f"w-{watch}", "category": watch, "type": "welfare", "watch": watch, **fields}
    )


# --- a resident's day, as the flat's sensors report it ---------------------------------------------------


class Plan:
    """Where the resident is: (start, room, activity) points; a move between rooms that are not
    en-suite passes through the hall (the PIR)."""

    def __init__(self, start: datetime, room: str = "bedroom", activity: str = "sleep") -> None:
        self.points: list[tuple[datetime, str, str]] = [(start, room, activity)]

    def go(self, t: datetime, room: str, activity: str) -> datetime:
        t = max(t, self.points[-1][0] + m(1))
        here = self.points[-1][1]
        if room != here and {room, here} != {"bedroom", "bathroom"} and "hall" not in (room, here):
            self.points.append((t, "hall", "walk"))
            t += m(1)
        self.points.append((t, room, activity))
        return t

    def visit(self, t: datetime, room: str, activity: str, minutes: float) -> datetime:
        _, back_room, back_activity = self.points[-1]
        t = self.go(t, room, activity)
        return self.go(t + m(minutes), back_room, back_activity)


def ordinary_day(
    plan: Plan,
    day: int,
    rng: random.Random,
    *,
    nap: bool = False,
    bath: float | None = None,
    night_visit: bool = True,
    still: tuple[float, float] | None = None,
) -> None:
    """Asleep until about 07:00, a wash, meals in the kitchen (occupancy only, no motion sensor), the
    living room in between, bathroom visits, an evening wash and bed about 22:30."""

    def around(hh: float, jitter: float) -> datetime:
        return DAY0 + timedelta(days=day, hours=hh) + m(rng.uniform(-jitter, jitter))

    if night_visit:  # the en-suite at night: bedroom <-> bathroom, never the hall
        plan.visit(around(3, 60), "bathroom", "wash", rng.uniform(4, 9))
    t = plan.go(around(7, 20), "bedroom", "up")
    t = plan.go(t + m(rng.uniform(3, 8)), "bathroom", "wash")
    t = plan.go(t + m(rng.uniform(15, 25)), "kitchen", "meal")
    t = plan.go(t + m(rng.uniform(25, 40)), "living", "sit")
    plan.visit(around(10.5, 30), "bathroom", "wash", rng.uniform(3, 8))
    if still is not None:  # motionless in the chair (the inactivity the rule is for)
        t = plan.go(around(still[0], 0), "living", "still")
        plan.go(t + m(still[1]), "living", "sit")
    t = plan.go(around(12.25, 10), "kitchen", "meal")
    plan.go(t + m(rng.uniform(30, 45)), "living", "sit")
    if nap:  # dozing in the chair: present, not moving
        t = plan.go(around(14, 5), "living", "still")
        plan.go(t + m(90), "living", "sit")
    plan.visit(around(16, 20), "bathroom", "wash", rng.uniform(3, 8))
    t = plan.go(around(17.5, 10), "kitchen", "meal")
    plan.go(t + m(rng.uniform(30, 45)), "living", "sit")
    if bath is not None:
        plan.visit(around(19.5, 10), "bathroom", "wash", bath)
    t = plan.go(around(22, 10), "bathroom", "wash")
    plan.go(t + m(rng.uniform(10, 15)), "bedroom", "sleep")


def readings(plan: Plan, end: datetime, rng: random.Random, idle: float = 0.1) -> list[RoomObs]:
    """What the five sensors send: a report a few seconds after each change, plus each one's periodic
    report. The living-room ERS counts motion (sometimes none while sitting: `idle`)."""
    points = plan.points
    starts = [p[0] for p in points]

    def where(t: datetime) -> tuple[str, str]:
        _, room, activity = points[max(0, bisect.bisect_right(starts, t) - 1)]
        return room, activity

    out: list[RoomObs] = []
    for i, (t, room, activity) in enumerate(points):
        if t >= end:
            break
        prev = points[i - 1] if i else None
        seen = t + timedelta(seconds=5)
        if room == "hall":
            out.append(RoomObs(seen, DEV["hall"], "hall", motion=True))
        elif room == "bedroom":
            out.append(RoomObs(seen, DEV[room], room, occupied=True, in_bed=activity == "sleep"))
        elif prev is None or prev[1] != room:
            out.append(RoomObs(seen, DEV[room], room, occupied=True))
        if prev is not None and prev[1] != room:
            left = prev[1]
            if left == "hall":
                out.append(RoomObs(seen + timedelta(seconds=90), DEV["hall"], "hall", motion=False))
            elif left == "bedroom":
                out.append(RoomObs(seen, DEV[left], left, occupied=False, in_bed=False))
            else:
                out.append(RoomObs(seen, DEV[left], left, occupied=False))
    for sensor, (every, offset) in PERIODIC.items():
        t = points[0][0].replace(minute=0) + m(offset)
        while t < end:
            room, activity = where(t)
            here = room == sensor
            if sensor == "living":
                moving = here and activity in MOVING and rng.random() >= idle
                out.append(
                    RoomObs(t, DEV[sensor], sensor, motion_count=rng.randint(1, 8) if moving else 0, occupied=here)
                )
            elif sensor == "bedroom":
                out.append(RoomObs(t, DEV[sensor], sensor, occupied=here, in_bed=here and activity == "sleep"))
            elif sensor == "hall":
                out.append(RoomObs(t, DEV[sensor], sensor, motion=here))
            else:
                out.append(RoomObs(t, DEV[sensor], sensor, occupied=here))
            t += m(every)
    out.sort(key=lambda o: o.at)
    return out


def days_of(days: int, seed: int = 1, **kwargs: Any) -> tuple[Plan, list[RoomObs]]:
    rng = random.Random(seed)
    plan = Plan(DAY0)
    for day in range(days):
        ordinary_day(plan, day, rng, **kwargs)
    return plan, readings(plan, DAY0 + timedelta(days=days), rng)


# --- the engine, as far as the evaluator sees it ---------------------------------------------------------


def drive(
    r: WelfareRule,
    series: Iterable[RoomObs],
    state: WelfareState | None = None,
    *,
    until: datetime | None = None,
    clock: bool = True,
    restart: bool = False,
) -> tuple[WelfareState, list[Decision]]:
    """Feed readings in order; `clock`: tick whenever due() has come (as the engine does) before each
    reading and up to `until`; `restart`: reload the state from its JSON after every reading."""
    current = state or WelfareState()
    out: list[Decision] = []

    def run_clock(now: datetime) -> None:
        nonlocal current
        while (when := due(r, current)) is not None and when <= now:
            current, decisions = tick(r, current, now)
            assert decisions, f"due() said {when} but tick({now}) decided nothing"
            out.extend(decisions)

    for obs in series:
        if clock:
            run_clock(obs.at)
        current, decisions = observe(r, current, obs)
        out.extend(decisions)
        if restart:
            current = WelfareState.from_json(json.loads(json.dumps(current.to_json())))
    if clock and until is not None:
        run_clock(until)
    return current, out


def opens(decisions: list[Decision]) -> list[Open]:
    return [d for d in decisions if isinstance(d, Open)]


def hall(t: datetime) -> RoomObs:
    return RoomObs(t, DEV["hall"], "hall", motion=True)


def living(t: datetime, count: int = 0) -> RoomObs:
    return RoomObs(t, DEV["living"], "living", motion_count=count, occupied=True)


def bathroom(t: datetime, occupied: bool) -> RoomObs:
    return RoomObs(t, DEV["bathroom"], "bathroom", occupied=occupied)


def still_in_living(start: datetime, end: datetime) -> list[RoomObs]:
    """The living room's ERS every 10 min: someone there, not moving."""
    out, t = [], start
    while t < end:
        out.append(living(t))
        t += m(10)
    return out


# --- inactivity ------------------------------------------------------------------------------------------


def test_a_quiet_daytime_spell_opens_when_it_crossed_the_line_and_resolves_on_activity() -> None:
    r = rule("inactivity")  # min_for 2h, day 08-21, nothing learned yet
    series = [hall(at(0, 9)), *still_in_living(at(0, 9, 1), at(0, 12, 30)), living(at(0, 12, 30), count=3)]
    state, out = drive(r, series)
    assert [type(d) for d in out] == [Open, Resolve]
    opened, resolved = out
    assert isinstance(opened, Open) and isinstance(resolved, Resolve)
    assert opened.at == at(0, 11)  # last activity + 2h, not when the clock noticed
    assert (opened.value, opened.severity, opened.firing) == (120.0, "warning", True)
    assert opened.device_id == DEV["hall"]  # where activity was last seen
    assert opened.details is not None and opened.details["threshold_min"] == 120
    assert not opened.details["learned"]
    assert resolved.at == at(0, 12, 30)
    assert not state.open and state.alerted is None
    # replayed in one batch without the clock: the same decisions, the same times
    assert drive(r, series, clock=False)[1] == out


def test_ordinary_days_do_not_alert() -> None:
    _, series = days_of(6)
    for minimum in ("1h", "2h"):
        state, out = drive(rule("inactivity", min_for=minimum), series, until=at(6, 0))
        assert opens(out) == [], minimum
    # what it learned: meals and chair time, not the night's sleep
    assert 30 <= max(max(v) for v in state.usual.values()) <= 60
    assert set(state.usual) <= {str(h) for h in range(8, 21)}


def test_the_night_is_never_inactivity_but_not_getting_up_is() -> None:
    r = rule("inactivity")
    # bed at 22:30, asleep (the radar's periodic in-bed reports) until the next afternoon
    series = [hall(at(0, 22, 20)), RoomObs(at(0, 22, 30), DEV["bedroom"], "bedroom", occupied=True, in_bed=True)]
    t = at(0, 22, 40)
    while t < at(1, 9):
        series.append(RoomObs(t, DEV["bedroom"], "bedroom", occupied=True, in_bed=True))
        t += m(20)
    state, out = drive(r, series, until=at(1, 9))
    assert out == []
    assert due(r, state) == at(1, 10)  # the day's part of the spell counts from 08:00
    _, out = drive(r, [], state, until=at(1, 13))
    assert [(type(d), d.at) for d in out] == [(Open, at(1, 10))]


def test_a_flat_with_a_daily_nap_learns_that_long_afternoon_quiet_is_normal() -> None:
    r = rule("inactivity", min_for="1h")
    rng = random.Random(7)
    plan = Plan(DAY0)
    for day in range(8):
        ordinary_day(plan, day, rng, nap=True)
    series = readings(plan, at(8, 0), rng)
    state, out = drive(r, series)
    opened = opens(out)
    # until learn_days (3) days are known only min_for applies: the nap alerts then ...
    assert {o.at.date() for o in opened} == {at(d, 0).date() for d in range(3)}
    assert all(o.details is not None and o.details["threshold_min"] == 60 for o in opened)
    assert all(at(d, 14, 40) <= o.at <= at(d, 15, 20) for d, o in enumerate(opened))
    # ... and never once the flat's own afternoons are known
    assert all(o.at < at(3, 0) for o in opened)
    # the line at 14:00 is now well beyond the nap: a quiet spell starting then is due hours later
    # (`last`: as if the sensors kept reporting through it)
    probe = replace(state, since=at(8, 14), last=at(8, 20), alerted=None, open=False)
    when = due(r, probe)
    assert when is not None and when >= at(8, 16)
    # but the same flat is still watched: in the morning the line is short
    morning = due(r, replace(probe, since=at(8, 9)))
    assert morning is not None and morning <= at(8, 10, 30)


def test_a_person_resolving_the_alert_is_not_reopened_for_the_same_spell() -> None:
    r = rule("inactivity")
    state, out = drive(r, [hall(at(0, 9)), *still_in_living(at(0, 9, 1), at(0, 11, 30))])
    assert [d.at for d in opens(out)] == [at(0, 11)]
    state = replace(state, open=False)  # a carer checked and resolved it
    assert due(r, state) is None
    state, out = drive(r, still_in_living(at(0, 11, 30), at(0, 15)), state, until=at(0, 15))
    assert out == []
    # new activity re-arms (nothing to resolve: the alert is already resolved) ...
    state, out = drive(r, [hall(at(0, 15))], state)
    assert out == []
    # ... and a new quiet spell can alert again
    _, out = drive(r, still_in_living(at(0, 15, 1), at(0, 18)), state, until=at(0, 18))
    assert [(type(d), d.at) for d in out] == [(Open, at(0, 17))]


def test_quiet_is_only_judged_while_the_flat_is_heard_from() -> None:
    r = rule("inactivity")
    # the gateway goes down at 09:25: no reading at all, so no quiet observed, nothing due
    state, out = drive(r, [hall(at(0, 9)), *still_in_living(at(0, 9, 1), at(0, 9, 25))], until=at(0, 14))
    assert out == [] and due(r, state) is None
    # back at 14:00 with someone moving: the spell ended unseen, nothing to say
    _, out = drive(r, [living(at(0, 14), count=4)], state, until=at(0, 15))
    assert out == []
    # back at 14:00 and still nobody moving: the spell was quiet throughout; dated when it crossed
    _, out = drive(r, [living(at(0, 14))], state, until=at(0, 15))
    assert [(type(d), d.at) for d in out] == [(Open, at(0, 11))]


def test_moves_and_getting_up_are_activity_presence_alone_is_not() -> None:
    r = rule("inactivity")
    state, _ = drive(r, [hall(at(0, 9)), living(at(0, 9, 1))])
    assert state.since == at(0, 9)  # the first room seen occupied is not a move
    state, _ = drive(r, [RoomObs(at(0, 9, 30), DEV["kitchen"], "kitchen", occupied=True)], state)
    assert state.since == at(0, 9, 30)  # occupied in another room: a move
    state, _ = drive(r, [RoomObs(at(0, 9, 40), DEV["kitchen"], "kitchen", occupied=True)], state)
    assert state.since == at(0, 9, 30)  # still the kitchen
    state, _ = drive(r, [RoomObs(at(0, 9, 50), DEV["bedroom"], "bedroom", occupied=True, in_bed=True)], state)
    state, _ = drive(r, [RoomObs(at(0, 10), DEV["bedroom"], "bedroom", occupied=True, in_bed=False)], state)
    assert (state.since, state.device) == (at(0, 10), DEV["bedroom"])  # out of bed


# --- bathroom dwell --------------------------------------------------------------------------------------


def test_a_long_bathroom_stay_opens_after_the_threshold_and_resolves_when_vacated() -> None:
    r = rule("bathroom_dwell", min_for="45m")
    series = [
        hall(at(0, 9, 58)),
        bathroom(at(0, 10), True),
        bathroom(at(0, 10, 30), True),  # periodic
        hall(at(0, 10, 40)),  # someone else in the flat: not the bathroom's business
        bathroom(at(0, 11), True),
        bathroom(at(0, 11, 10), False),
    ]
    state, out = drive(r, series)
    assert [(type(d), d.at) for d in out] == [(Open, at(0, 10, 45)), (Resolve, at(0, 11, 10))]
    opened = out[0]
    assert isinstance(opened, Open) and opened.device_id == DEV["bathroom"] and opened.value == 45.0
    assert state.since is None and not state.open
    assert drive(r, series, clock=False)[1] == out


def test_ordinary_bathroom_visits_do_not_alert() -> None:
    _, series = days_of(6)
    _, out = drive(rule("bathroom_dwell", min_for="45m"), series)
    assert opens(out) == []


def test_a_long_normal_bather_teaches_a_longer_line() -> None:
    r = rule("bathroom_dwell", min_for="30m")
    rng = random.Random(3)
    plan = Plan(DAY0)
    for day in range(10):
        ordinary_day(plan, day, rng, bath=50)
    state, out = drive(r, readings(plan, at(10, 0), rng))
    # the cold-start minimum (30 min) catches the 50-min baths for the first days only
    opened = opens(out)
    assert opened and all(o.at < at(4, 0) for o in opened)
    assert all(o.details is not None and o.details["threshold_min"] == 30 for o in opened[:3])
    # learned: a bath now has twice its usual length before it alerts
    probe = replace(state, since=at(10, 19), last=at(10, 21), alerted=None, open=False)
    assert due(r, probe) == at(10, 19) + m(100)
    # an hour longer than usual still alerts, at the learned line
    series = [bathroom(at(10, 19), True), bathroom(at(10, 19, 30), True), bathroom(at(10, 21, 30), False)]
    _, out = drive(r, series, state, until=at(10, 22))
    assert [(type(d), d.at) for d in out] == [(Open, at(10, 20, 40)), (Resolve, at(10, 21, 30))]
    first = out[0]
    assert isinstance(first, Open) and first.details is not None
    assert (first.details["usual_min"], first.details["learned"]) == (50, True)


def test_a_person_resolved_bathroom_alert_stays_resolved_until_vacated() -> None:
    r = rule("bathroom_dwell", min_for="45m")
    state, out = drive(r, [bathroom(at(0, 10), True)], until=at(0, 11))
    assert len(opens(out)) == 1
    state = replace(state, open=False)
    state, out = drive(r, [bathroom(at(0, 11, 30), True)], state, until=at(0, 13))
    assert out == []
    state, out = drive(r, [bathroom(at(0, 13, 5), False), bathroom(at(0, 14), True)], state, until=at(0, 15))
    assert [(type(d), d.at) for d in out] == [(Open, at(0, 14, 45))]  # a new visit


# --- night activity --------------------------------------------------------------------------------------


def wandering(plan: Plan, start: datetime, minutes: float, rng: random.Random) -> None:
    """Up in the small hours: hall, kitchen, hall, living room ..., then back to bed."""
    t, end, room = start, start + m(minutes), "kitchen"
    while t < end:
        t = plan.go(t, room, "wander") + m(rng.uniform(3, 8))
        room = "living" if room == "kitchen" else "kitchen"
    plan.go(t, "bedroom", "sleep")


def test_night_wandering_opens_and_resolves_once_quiet_for_the_window() -> None:
    r = rule("night_activity")  # min_events 4 in 30 min, nights 00-05
    rng = random.Random(5)
    plan = Plan(DAY0)
    for day in range(5):
        ordinary_day(plan, day, rng)
    plan.go(at(5, 2), "bedroom", "sleep")
    wandering(plan, at(5, 2), 40, rng)
    ordinary_day(plan, 5, rng, night_visit=False)
    series = readings(plan, at(6, 0), rng)
    state, out = drive(r, series, until=at(6, 0))
    assert [type(d) for d in out] == [Open, Resolve]
    opened, resolved = out
    assert isinstance(opened, Open) and isinstance(resolved, Resolve)
    assert at(5, 2) < opened.at < at(5, 2, 30)
    assert opened.device_id in (DEV["hall"], DEV["kitchen"], DEV["living"])
    assert opened.value is not None and opened.value >= 4
    assert opened.details is not None and opened.details["learned"]  # 5 quiet nights known: usual 0
    # the last event of the wander was the hall on the way back to bed; quiet for 30 min after it
    back = max(o.at for o in series if o.device_id == DEV["hall"] and o.motion and o.at < at(5, 4))
    assert resolved.at == back + m(30)
    assert not state.open


def test_en_suite_visits_and_a_drink_of_water_are_not_night_activity() -> None:
    r = rule("night_activity")
    rng = random.Random(11)
    plan = Plan(DAY0)
    for day in range(6):
        ordinary_day(plan, day, rng)  # each night a bedroom <-> bathroom visit
    plan.visit(at(6, 1), "kitchen", "meal", 4)  # hall, kitchen, hall: three events
    _, out = drive(r, readings(plan, at(6, 5), rng), until=at(6, 5))
    assert out == []


def test_night_activity_due_and_person_resolved() -> None:
    r = rule("night_activity")
    events = [hall(at(0, 2)), RoomObs(at(0, 2, 1), DEV["kitchen"], "kitchen", occupied=True), hall(at(0, 2, 5))]
    state, out = drive(r, events)
    assert out == [] and due(r, state) is None
    state, out = drive(r, [living(at(0, 2, 6), count=2)], state)
    assert [(type(d), d.at, d.device_id) for d in opens(out)] == [(Open, at(0, 2, 6), DEV["living"])]
    assert due(r, state) == at(0, 2, 36)
    state, _ = drive(r, [hall(at(0, 2, 20))], state)
    assert due(r, state) == at(0, 2, 50)
    state = replace(state, open=False)  # a carer resolved it while still up
    assert due(r, state) is None
    state, out = drive(r, [hall(at(0, 2, 22 + k)) for k in range(6)], state)
    assert out == []  # the same episode: not reopened
    state, out = drive(r, [hall(at(0, 3, 30 + k)) for k in range(4)], state)
    assert [d.at for d in opens(out)] == [at(0, 3, 33)]  # a new one, after 30 quiet minutes


# --- all three: restarts, backfill, size -------------------------------------------------------------------


def eventful_fortnight() -> list[RoomObs]:
    rng = random.Random(2)
    plan = Plan(DAY0)
    for day in range(14):
        if day == 9:
            plan.go(at(day, 2), "bedroom", "sleep")
            wandering(plan, at(day, 2), 60, rng)
        bath = 100 if day == 12 else 40 if day % 3 == 0 else None
        still = (11.0, 200.0) if day == 11 else None  # late morning through lunch
        ordinary_day(plan, day, rng, nap=day % 2 == 0, bath=bath, night_visit=day != 9, still=still)
    return readings(plan, at(14, 0), rng)


@pytest.mark.parametrize("watch", ["inactivity", "bathroom_dwell", "night_activity"])
def test_the_state_survives_a_restart_after_every_reading(watch: str) -> None:
    r = rule(watch, min_for="1h")
    series = eventful_fortnight()
    state, out = drive(r, series, until=at(14, 0))
    reloaded, again = drive(r, series, until=at(14, 0), restart=True)
    assert again == out and reloaded == state
    assert opens(out)  # the series is not trivially quiet for any watch
    assert len(json.dumps(state.to_json())) < 3000
    assert WelfareState.from_json({}) == WelfareState()
    assert WelfareState.from_json({"open": True, "usual": {"9": [1, "x"]}, "since": "nope"}) == WelfareState(
        open=True, usual={"9": (1,)}
    )


@pytest.mark.parametrize("watch", ["inactivity", "bathroom_dwell", "night_activity"])
def test_backfilled_old_readings_change_nothing(watch: str) -> None:
    r = rule(watch, min_for="1h")
    series = [o for o in eventful_fortnight() if o.at < at(9, 2, 20)]
    state, _ = drive(r, series)
    for old in (hall(at(9, 2, 10)), bathroom(at(9, 1), True), bathroom(at(9, 1), False), living(at(8, 14), count=5)):
        assert old.at < state.last  # type: ignore[operator]
        assert observe(r, state, old) == (state, [])


def test_a_whole_day_window_and_one_that_wraps_past_midnight() -> None:
    always = rule("inactivity", day=[0, 24])
    state, _ = drive(always, [hall(at(0, 23)), *still_in_living(at(0, 23, 1), at(1, 0))])
    assert due(always, state) == at(1, 1)  # no night: quiet at 23:00 counts
    shift = rule("inactivity", day=[20, 6])  # someone up at night, asleep in the day
    state, _ = drive(shift, [hall(at(0, 10)), *still_in_living(at(0, 10, 1), at(0, 21))])
    assert due(shift, state) == at(0, 22)
    state, _ = drive(shift, [hall(at(0, 23, 30)), *still_in_living(at(0, 23, 31), at(1, 1))], state)
    assert due(shift, state) == at(1, 1, 30)
    state, _ = drive(shift, [hall(at(1, 5)), *still_in_living(at(1, 5, 1), at(1, 21))], state)
    assert due(shift, state) == at(1, 22)  # 05:00 + 2h is past 06:00: the next night's window


def test_rules_from_yaml_parse_into_welfare_rules() -> None:
    rules = parse_rules("""\
version: 1
rules:
  - {name: quiet, category: inactivity, type: welfare, watch: inactivity, min_for: 90m, day: [7, 22]}
""")
    r = rules.rule("quiet")
    assert isinstance(r, WelfareRule)
    state, _ = drive(r, [hall(at(0, 9)), living(at(0, 9, 30))])
    assert due(r, state) == at(0, 10, 30)
