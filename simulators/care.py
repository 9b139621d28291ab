"""Care scenarios: residents' rooms fitted with presence and falls sensors, driven by each resident's
daily routine, with falls, inactivity episodes and night-time wandering as labelled ground truth.

Each resident's flat has a VS373 fall-detection radar in the bedroom, a VS330 ToF occupancy sensor in
the bathroom, a WS202 PIR in the hall, a VS370 presence sensor in the kitchen and an ERS Eye in the
living room. What each sends follows from where the resident is and what they are doing: change
reports a few seconds after a change, plus each model's periodic report.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from simulators import fleet, payloads, routine
from simulators.hydrology import DAY, HOUR
from simulators.model import Device, Label, Placement, Record
from simulators.routine import MINUTE, Segment, Timeline
from simulators.run import RunConfig
from simulators.simulation import Simulation
from simulators.transmitter import Outages, Transmitter

#: Room -> (model, periodic report interval s). Only the bedroom radar reports falls.
ROOM_DEVICES: dict[str, tuple[str, float]] = {
    "bedroom": ("milesight-iot/vs373", 20 * MINUTE),
    "bathroom": ("milesight-iot/vs330", 30 * MINUTE),
    "hall": ("milesight-iot/ws202", 60 * MINUTE),
    "kitchen": ("milesight-iot/vs370", 30 * MINUTE),
    "living": ("elsys/ers-eye", 10 * MINUTE),
}
#: A WS202 goes back to "normal" this long after the last motion it saw.
PIR_HOLD_S = 90.0


@dataclass(frozen=True, slots=True)
class CareParams:
    """Anomaly rates per resident per week (1 or more: at least one per resident in any run of two
    days or longer)."""

    falls_per_week: float = 0.0
    inactivity_per_week: float = 0.0
    wandering_per_week: float = 0.0
    #: falls at set times (seconds after the run's start), one per resident in order: resident-001
    #: falls at the first, resident-002 at the second. What a demo needs to show a fall at once.
    falls_at_s: tuple[float, ...] = ()


@dataclass
class Room:
    """A sensor in a resident's room and the timeline it watches."""

    resident: str
    room: str
    device: Device
    timeline: Timeline
    battery: float


def build(config: RunConfig, params: CareParams, scenario: str) -> Simulation:
    """Plan residents, their anomalies and their rooms' sensors."""
    models = payloads.available([model for model, _ in ROOM_DEVICES.values()])
    rng = config.rng("care-plan")
    app = fleet.application(rng, "falls-care", "council-care", "Council Care")
    homes = max(1, math.ceil(config.fleet / 12))
    gws = fleet.gateways(rng, homes, "care", 1.5)
    labels: list[Label] = []
    sim = Simulation(scenario, config.start, config.end, [], [], labels)
    profiles: dict[str, tuple[str, str]] = {}
    outages = Outages()
    for r in range(config.fleet):
        resident = f"resident-{r + 1:03d}"
        rrng = config.rng("care", resident)
        gateway = gws[r % homes]
        timeline = routine.daily_routine(rrng, config.start, config.end)
        devices: dict[str, Device] = {}
        for room, (model, _) in ROOM_DEVICES.items():
            if model not in models:
                continue
            links = fleet.links_for(
                rrng,
                (gateway.latitude, gateway.longitude),
                [gateway],
                extra_loss_db=rrng.uniform(-25.0, -10.0),
            )
            devices[room] = fleet.device(
                rrng,
                device_id=f"care-{r + 1:03d}-{room}",
                model=model,
                app=app,
                links=links,
                attributes={"resident": resident, "room": room, "home": gateway.gateway_id},
                profiles=profiles,
            )
        timeline, falls = _anomalies(rrng, config, params, timeline, resident, devices, labels)
        if r < len(params.falls_at_s) and "bedroom" in devices:
            at = config.start + params.falls_at_s[r]
            timeline, fall = _planned_fall(config.rng("planned-fall", resident), timeline, at, len(falls) + 1)
            falls = sorted([*falls, fall], key=lambda f: f.start)
            extra = {"resident": resident, "room": "bedroom", "alarm_id": fall.alarm_id}
            extra["device_ids"] = sorted(d.device_id for d in devices.values())
            labels.append(Label("fall", devices["bedroom"].device_id, fall.start, fall.help_at, extra))
        for room, device in devices.items():
            drng = config.rng("care", device.device_id)
            tx = Transmitter(device, drng, loss=config.loss, outages=outages, f_cnt=drng.randrange(100, 20000))
            state = Room(resident, room, device, timeline, drng.uniform(0.6, 1.0))
            sim.devices.append(device)
            sim.placements.append(
                Placement(
                    device=device,
                    kind="care",
                    name=f"{resident} {room}",
                    latitude=gateway.latitude,  # the care home: each has its own gateway
                    longitude=gateway.longitude,
                    care_room=room,
                    care_group=resident,  # the resident's flat: every sensor watching them
                )
            )
            sim.streams.append(_stream(state, tx, config, falls if room == "bedroom" else []))
    sim.expected_uplinks = int(
        config.fleet * sum(config.duration / interval * 1.5 for _, interval in ROOM_DEVICES.values())
    )
    return sim


@dataclass(frozen=True, slots=True)
class Fall:
    alarm_id: int
    start: float
    help_at: float


def _anomalies(
    rng: random.Random,
    config: RunConfig,
    params: CareParams,
    timeline: Timeline,
    resident: str,
    devices: dict[str, Device],
    labels: list[Label],
) -> tuple[Timeline, list[Fall]]:
    """Pick distinct days for each anomaly, lay it over the routine and label it."""
    weeks = config.duration / (7 * DAY)
    first_day = config.start - config.start % DAY
    days = [first_day + k * DAY for k in range(1, max(1, int(config.duration // DAY)))]
    rng.shuffle(days)
    falls: list[Fall] = []
    kinds: list[tuple[str, Callable[[random.Random, Timeline, float], tuple[Timeline, float, float]], float, str]] = [
        ("fall", routine.fall, params.falls_per_week, "bedroom"),
        ("inactivity", routine.inactivity, params.inactivity_per_week, "living"),
        ("night_wandering", routine.night_wandering, params.wandering_per_week, "hall"),
    ]
    for label, apply, rate, room in kinds:
        # A rate of one a week or more means at least one in any run; rarer ones happen by chance.
        count = max(1, round(rate * weeks)) if rate >= 1 else int(rng.random() < rate * weeks)
        for _ in range(count):
            if not days or room not in devices:
                break
            day = days.pop()
            timeline, start, end = apply(rng, timeline, day)
            extra: dict[str, Any] = {"resident": resident, "room": room}
            if label == "fall":
                alarm_id = len(falls) + 1
                falls.append(Fall(alarm_id, start, end))
                extra["alarm_id"] = alarm_id
            extra["device_ids"] = sorted(d.device_id for d in devices.values())
            labels.append(Label(label, devices[room].device_id, start, end, extra))
    return timeline, falls


def _planned_fall(rng: random.Random, timeline: Timeline, at: float, alarm_id: int) -> tuple[Timeline, Fall]:
    """A fall at `at`, whatever the routine had the resident doing: into the bedroom, on the floor
    until staff answer the alarm (5 to 40 minutes), then helped up. Its own generator, so the rest of
    the plan is the same with or without it."""
    t_help = at + rng.uniform(5.0, 40.0) * MINUTE
    resume = t_help + rng.uniform(10.0, 20.0) * MINUTE
    segments = [
        Segment(at - 2 * MINUTE, at, "bedroom", "walk"),
        Segment(at, t_help, "bedroom", "fallen"),
        Segment(t_help, resume, "bedroom", "assisted"),
    ]
    return timeline.overlay(segments), Fall(alarm_id, at, t_help)


def _motion(timeline: Timeline, room: str, t0: float, t1: float) -> float:
    """Expected PIR motion events in `room` during [t0, t1)."""
    total = 0.0
    for s in timeline.between(t0, t1):
        if s.room == room:
            total += routine.MOTION_PER_MIN[s.activity] * (min(s.end, t1) - max(s.start, t0)) / MINUTE
    return total


def _daylight_lux(t: float) -> float:
    hour = (t % DAY) / HOUR
    return max(0.0, 400.0 * math.sin(math.pi * (hour - 7.5) / 9.0)) if 7.5 < hour < 16.5 else 0.0


def _percent(battery: float) -> int:
    return max(1, min(100, round(100 * battery)))


def _reading(room: Room, rng: random.Random, t: float, since: float) -> dict[str, Any]:
    """What the room's sensor reports at `t` (its last report was at `since`)."""
    seg = room.timeline.at(t)
    here = seg.room == room.room
    battery = room.battery  # these batteries last years: flat over a run
    model = room.device.model
    if model == "milesight-iot/vs373":
        detection, target = _vs373_status(seg, here)
        today = sum(
            min(s.end, t) - max(s.start, t - t % DAY)
            for s in room.timeline.between(t - t % DAY, t)
            if s.room == room.room
        )
        now = (t - seg.start) if here else 0.0
        return {
            "detection_status": detection,
            "target_status": target,
            "use_time_now": min(int(now // MINUTE), 65535),
            "use_time_today": min(int(today // MINUTE), 65535),
        }
    if model == "milesight-iot/vs330":
        distance = rng.uniform(900.0, 1300.0) if here else 2400.0 + rng.gauss(0.0, 3.0)
        return {
            "battery": _percent(battery),
            "distance": round(distance),
            "occupancy": "occupied" if here else "vacant",
        }
    if model == "milesight-iot/ws202":
        moving = here and seg.activity not in ("inactive", "fallen")
        light = "light" if _daylight_lux(t) > 50 or (here and (t % DAY) > 16 * HOUR) else "dark"
        return {"battery": _percent(battery), "pir": "trigger" if moving else "normal", "light": light}
    if model == "milesight-iot/vs370":
        bright = _daylight_lux(t) > 80 or (here and seg.activity != "inactive")
        return {
            "battery": _percent(battery),
            "occupancy": "occupied" if here else "vacant",
            "illuminance": "bright" if bright else "dim",
        }
    expected = _motion(room.timeline, room.room, since, t)
    motion = 0 if expected == 0 else max(0, round(rng.gauss(expected, math.sqrt(expected))))  # ~Poisson
    lamp = 180.0 if here and _daylight_lux(t) < 100 and seg.activity != "sleep" else 0.0
    return {
        "temperature": round(20.5 + 1.0 * math.sin(2 * math.pi * ((t % DAY) / DAY - 0.4)) + rng.gauss(0, 0.1), 1),
        "humidity": round(45 + rng.gauss(0, 2)),
        "light": round(_daylight_lux(t) + lamp + rng.uniform(0, 5)),
        "motion": motion,
        "vdd": round(3000 + 650 * battery),
        "occupancy": 2 if here else 0,
    }


def _vs373_status(seg: Segment, here: bool) -> tuple[str, str]:
    if not here:
        return "vacant", "normal"
    if seg.activity == "fallen":
        return "fall", "lying_down"
    if seg.activity == "sleep":
        return "in_bed", "normal"
    return "normal", "normal"


def _change_key(model: str, reading: dict[str, Any]) -> tuple[Any, ...]:
    """The part of a reading whose change makes the device report at once."""
    if model == "milesight-iot/vs373":
        return (reading["detection_status"], reading["target_status"])
    if model == "milesight-iot/ws202":
        return (reading["pir"],)
    if model in ("milesight-iot/vs330", "milesight-iot/vs370"):
        return (reading["occupancy"],)
    return ()


def _stream(room: Room, tx: Transmitter, config: RunConfig, falls: list[Fall]) -> Iterator[Record]:
    """One room sensor's uplinks: periodic reports, change reports, and the VS373 alarm sequence."""
    rng = tx.rng
    model = room.device.model
    interval = ROOM_DEVICES[room.room][1]
    periodic = _periodic_times(rng, config, interval)
    changes = [] if model == "elsys/ers-eye" else [s.start + rng.uniform(2.0, 15.0) for s in room.timeline.segments]
    if model == "milesight-iot/ws202":
        changes += [s.end + PIR_HOLD_S for s in room.timeline.segments if s.room == room.room]
        changes.sort()
    alarms = [(f.start + rng.uniform(2.0, 6.0), "alarm", f) for f in falls]
    alarms += [(f.help_at + rng.uniform(2.0, 6.0), "clear", f) for f in falls]
    alarms += [(f.help_at + rng.uniform(60.0, 180.0), "history", f) for f in falls]
    alarms.sort(key=lambda item: item[0])
    timed: Iterator[tuple[float, str, Fall | None]] = heapq.merge(
        ((t, "periodic", None) for t in periodic),
        ((t, "change", None) for t in changes if config.start <= t < config.end),
        ((t, kind, f) for t, kind, f in alarms if config.start <= t < config.end),
        key=lambda item: item[0],
    )
    last_key: tuple[Any, ...] | None = None
    last_time = config.start
    for t, kind, fall in timed:
        reading = _reading(room, rng, t, last_time)
        key = _change_key(model, reading)
        if kind == "change" and key == last_key:
            continue
        confirmed = False
        if fall is not None:
            reading, confirmed = _alarm_reading(kind, fall, reading), True
        uplink = tx.send(t, reading, confirmed=confirmed)
        last_key, last_time = key, t
        if uplink is not None:
            yield uplink


def _periodic_times(rng: random.Random, config: RunConfig, interval: float) -> list[float]:
    t = config.start + rng.uniform(0.0, interval)
    out = []
    while t < config.end:
        out.append(t)
        t += interval + rng.uniform(-10.0, 10.0)
    return out


def _alarm_reading(kind: str, fall: Fall, status: dict[str, Any]) -> dict[str, Any]:
    """The VS373 fall alarm sequence: triggered (with the fall status), deactivated, then history."""
    event = {"alarm_id": fall.alarm_id, "alarm_type": "fall"}
    if kind == "alarm":
        return status | {"events": [event | {"alarm_status": "alarm_triggered"}]}
    if kind == "clear":
        return status | {"events": [event | {"alarm_status": "alarm_deactivated"}]}
    return {
        "history": [
            {"timestamp": int(fall.start), **event, "alarm_status": "alarm_triggered"},
            {"timestamp": int(fall.help_at), **event, "alarm_status": "alarm_deactivated"},
        ]
    }
