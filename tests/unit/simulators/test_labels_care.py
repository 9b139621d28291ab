"""Care labels match the sensors: a fall is a VS373 alarm triggered then deactivated (and re-sent as
history), inactivity has no movement, night-time wandering trips the hall PIR; the routine shows."""

from __future__ import annotations

from itertools import pairwise

from simulators.care import PIR_HOLD_S
from simulators.hydrology import DAY, HOUR
from simulators.model import Uplink

from .conftest import Run


def ups(run: Run, device_id: str, start: float, end: float) -> list[Uplink]:
    return [u for u in run.uplinks(device_id) if start <= u.time <= end]


def alarms(up: Uplink) -> list[dict[str, object]]:
    return list(up.decoded.get("events", []))


def test_a_fall_is_an_alarm_triggered_then_deactivated(care_falls: Run):
    falls = care_falls.labelled("fall")
    assert len(falls) >= 3
    for label in falls:
        alarm_id = label.extra["alarm_id"]
        seen = ups(care_falls, label.device_id, label.start, label.end + 300)
        events = [(u.time, e) for u in seen for e in alarms(u) if e["alarm_id"] == alarm_id]
        statuses = [e["alarm_status"] for _, e in events]
        assert statuses == ["alarm_triggered", "alarm_deactivated"], label.to_dict()
        assert all(e["alarm_type"] == "fall" for _, e in events)
        (t_on, _), (t_off, _) = events
        assert label.start <= t_on <= label.start + 60 and label.end <= t_off <= label.end + 60
        trigger = next(u for u in seen if u.time == t_on)
        assert trigger.decoded["detection_status"] == "fall" and trigger.confirmed
        assert trigger.decoded["target_status"] == "lying_down"
        history = [u for u in seen if "history" in u.decoded]
        assert history and history[0].time > t_off
        assert [(h["alarm_status"], h["timestamp"]) for h in history[0].decoded["history"]] == [
            ("alarm_triggered", int(label.start)),
            ("alarm_deactivated", int(label.end)),
        ]


def test_inactivity_has_no_movement(care_inactivity: Run):
    labels = care_inactivity.labelled("inactivity")
    assert len(labels) >= 3
    for label in labels:
        resident = label.extra["resident"]
        hall = next(d for d in label.extra["device_ids"] if d.endswith("-hall"))
        assert hall.startswith("care-") and resident
        assert not [u for u in ups(care_inactivity, hall, label.start, label.end) if u.decoded.get("pir") == "trigger"]
        living = ups(care_inactivity, label.device_id, label.start + 11 * 60, label.end)
        assert len(living) >= 10
        assert all(u.decoded["motion"] == 0 and u.decoded["occupancy"] == 2 for u in living)


def test_night_wandering_trips_the_hall_pir(care_wandering: Run):
    labels = care_wandering.labelled("night_wandering")
    assert len(labels) >= 3
    for label in labels:
        assert label.device_id.endswith("-hall")
        assert (label.start % DAY) < 5 * HOUR
        triggers = [
            u
            for u in ups(care_wandering, label.device_id, label.start, label.end + PIR_HOLD_S)
            if u.decoded["pir"] == "trigger"
        ]
        assert len(triggers) >= 2


def test_the_daily_routine_shows(care: Run):
    devices = {u.device.device_id for u in care.uplinks()}
    residents = sorted({d.rsplit("-", 1)[0] for d in devices})
    anomalies = {(label.device_id.rsplit("-", 1)[0], int(label.start // DAY)) for label in care.labels}
    for resident in residents:
        for day in range(int(care.uplinks()[0].time // DAY) + 1, int(care.uplinks()[-1].time // DAY)):
            if (resident, day) in anomalies or (resident, day - 1) in anomalies:
                continue
            t0 = day * DAY
            bed = ups(care, f"{resident}-bedroom", t0 + 2.5 * HOUR, t0 + 4.5 * HOUR)
            assert bed and sum(u.decoded["detection_status"] == "in_bed" for u in bed) >= len(bed) / 2
            kitchen = ups(care, f"{resident}-kitchen", t0 + 11.8 * HOUR, t0 + 13.5 * HOUR)
            assert any(u.decoded["occupancy"] == "occupied" for u in kitchen)  # lunch
            bathroom = ups(care, f"{resident}-bathroom", t0, t0 + DAY)
            occupied = [a for a, b in pairwise(bathroom) if b.decoded["occupancy"] != a.decoded["occupancy"]]
            assert len(occupied) >= 6  # at least three visits: in and out each


def test_care_devices_are_the_real_models(care: Run):
    models = {u.device.device_id.rsplit("-", 1)[1]: u.device.model for u in care.uplinks()}
    assert models == {
        "bedroom": "milesight-iot/vs373",
        "bathroom": "milesight-iot/vs330",
        "hall": "milesight-iot/ws202",
        "kitchen": "milesight-iot/vs370",
        "living": "elsys/ers-eye",
    }
