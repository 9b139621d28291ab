"""A care resident's day as a timeline of (room, activity) segments, and the anomalies laid over it.

The routine: asleep in the bedroom with the odd night-time bathroom visit, a morning wash, meals in the
kitchen, the living room in between, an evening wash and bed, all jittered day to day. Anomalies
replace part of the timeline: a fall (lying on the bedroom floor until staff arrive), an inactivity
episode (motionless in the living room through a meal), night-time wandering (hall, kitchen, living
room in the small hours). Clock times are UTC, which is UK local time in winter.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass

from simulators.hydrology import DAY, HOUR

MINUTE = 60.0
#: PIR motion events per minute for each activity.
MOTION_PER_MIN = {
    "sleep": 0.05,
    "wash": 2.0,
    "meal": 1.5,
    "sit": 0.6,
    "walk": 6.0,
    "wander": 4.0,
    "inactive": 0.0,
    "fallen": 0.0,
    "assisted": 2.0,
}


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float
    room: str
    activity: str


class Timeline:
    """Contiguous segments; `at(t)` finds the segment holding `t`."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments
        self._starts = [s.start for s in segments]

    def at(self, t: float) -> Segment:
        i = max(0, bisect.bisect_right(self._starts, t) - 1)
        return self.segments[i]

    def between(self, t0: float, t1: float) -> list[Segment]:
        """The segments overlapping [t0, t1)."""
        i = max(0, bisect.bisect_right(self._starts, t0) - 1)
        out = []
        while i < len(self.segments) and self.segments[i].start < t1:
            if self.segments[i].end > t0:
                out.append(self.segments[i])
            i += 1
        return out

    def overlay(self, replacement: list[Segment]) -> Timeline:
        """A new timeline with [first.start, last.end) replaced by `replacement`."""
        lo, hi = replacement[0].start, replacement[-1].end
        out: list[Segment] = []
        for s in self.segments:
            if s.end <= lo or s.start >= hi:
                out.append(s)
                continue
            if s.start < lo:
                out.append(Segment(s.start, lo, s.room, s.activity))
            if s.end > hi:
                out.append(Segment(hi, s.end, s.room, s.activity))
        out.extend(replacement)
        out.sort(key=lambda s: s.start)
        return Timeline(out)


class _Builder:
    """Appends moves; a move between rooms that are not en-suite passes through the hall."""

    def __init__(self, rng: random.Random, t: float, room: str, activity: str) -> None:
        self.rng = rng
        self.points: list[tuple[float, str, str]] = [(t, room, activity)]

    @property
    def room(self) -> str:
        return self.points[-1][1]

    def go(self, t: float, room: str, activity: str) -> None:
        t = max(t, self.points[-1][0] + MINUTE)
        if room != self.room and {room, self.room} != {"bedroom", "bathroom"} and "hall" not in (room, self.room):
            self.points.append((t, "hall", "walk"))
            t += self.rng.uniform(30.0, 90.0)
        self.points.append((t, room, activity))

    def visit(self, t: float, room: str, activity: str, minutes: tuple[float, float]) -> None:
        """Go to `room` for a while, then back to where the resident was."""
        back_room, back_activity = self.room, self.points[-1][2]
        self.go(t, room, activity)
        self.go(self.points[-1][0] + self.rng.uniform(*minutes) * MINUTE, back_room, back_activity)


def daily_routine(rng: random.Random, start: float, end: float) -> Timeline:
    """The resident's ordinary days covering [start, end)."""
    day0 = start - start % DAY
    b = _Builder(rng, day0 - DAY, "bedroom", "sleep")
    day = day0 - DAY
    while day < end + DAY:
        wake = day + 7 * HOUR + rng.uniform(-40, 40) * MINUTE
        for _ in range(rng.choices((0, 1, 2), (0.4, 0.4, 0.2))[0]):
            night = day + rng.uniform(0.5 * HOUR, wake - day - HOUR)
            if night > b.points[-1][0] + 10 * MINUTE:
                b.visit(night, "bathroom", "wash", (4, 10))
        b.go(wake, "bedroom", "sit")
        b.go(wake + rng.uniform(3, 10) * MINUTE, "bathroom", "wash")
        b.go(b.points[-1][0] + rng.uniform(15, 25) * MINUTE, "kitchen", "meal")
        b.go(b.points[-1][0] + rng.uniform(20, 40) * MINUTE, "living", "sit")
        b.visit(day + rng.uniform(9.5, 11.5) * HOUR, "bathroom", "wash", (3, 8))
        b.go(day + 12.25 * HOUR + rng.uniform(-20, 20) * MINUTE, "kitchen", "meal")
        b.go(b.points[-1][0] + rng.uniform(30, 45) * MINUTE, "living", "sit")
        b.visit(day + rng.uniform(14.0, 16.5) * HOUR, "bathroom", "wash", (3, 8))
        b.go(day + 17.5 * HOUR + rng.uniform(-20, 20) * MINUTE, "kitchen", "meal")
        b.go(b.points[-1][0] + rng.uniform(30, 45) * MINUTE, "living", "sit")
        b.go(day + 22 * HOUR + rng.uniform(-20, 20) * MINUTE, "bathroom", "wash")
        b.go(b.points[-1][0] + rng.uniform(10, 15) * MINUTE, "bedroom", "sleep")
        day += DAY
    points = b.points
    segments = [Segment(t, points[i + 1][0], room, act) for i, (t, room, act) in enumerate(points[:-1])]
    segments.append(Segment(points[-1][0], end + 2 * DAY, points[-1][1], points[-1][2]))
    return Timeline(segments)


def fall(rng: random.Random, timeline: Timeline, day: float) -> tuple[Timeline, float, float]:
    """A fall getting out of bed on `day`: on the floor until staff answer the alarm, then helped.
    Returns the new timeline, the fall time and the time help arrived."""
    wake = next(s for s in timeline.between(day + 5 * HOUR, day + 10 * HOUR) if s.activity == "sit")
    t_fall = wake.start + rng.uniform(1.0, 3.0) * MINUTE
    t_help = t_fall + rng.uniform(5.0, 40.0) * MINUTE
    resume = t_help + rng.uniform(10.0, 20.0) * MINUTE
    return (
        timeline.overlay(
            [Segment(t_fall, t_help, "bedroom", "fallen"), Segment(t_help, resume, "bedroom", "assisted")]
        ),
        t_fall,
        t_help,
    )


def inactivity(rng: random.Random, timeline: Timeline, day: float) -> tuple[Timeline, float, float]:
    """Motionless in the living-room chair from late morning through lunch for 3 to 5 hours."""
    start = day + rng.uniform(10.5, 11.5) * HOUR
    end = start + rng.uniform(3.0, 5.0) * HOUR
    replaced = timeline.overlay(
        [Segment(start - MINUTE, start, "living", "sit"), Segment(start, end, "living", "inactive")]
    )
    return replaced, start, end


def night_wandering(rng: random.Random, timeline: Timeline, day: float) -> tuple[Timeline, float, float]:
    """Up in the small hours, moving between hall, kitchen and living room, then back to bed."""
    start = day + rng.uniform(1.0, 3.5) * HOUR
    end = start + rng.uniform(30.0, 120.0) * MINUTE
    segments, t, room = [], start, "hall"
    while t < end:
        stay = rng.uniform(1.0, 3.0) * MINUTE if room == "hall" else rng.uniform(3.0, 10.0) * MINUTE
        nxt = min(t + stay, end)
        segments.append(Segment(t, nxt, room, "wander"))
        t = nxt
        room = "hall" if room != "hall" else rng.choice(("kitchen", "living"))
    segments.append(Segment(end, end + rng.uniform(1.0, 2.0) * MINUTE, "hall", "walk"))
    segments.append(Segment(segments[-1].end, segments[-1].end + MINUTE, "bedroom", "sleep"))
    return timeline.overlay(segments), start, end
