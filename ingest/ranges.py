"""Physical ranges per measurement: a value outside them is a corrupt or mis-decoded uplink and goes to
the dead letters (stage `range`) instead of onto a flood dashboard."""

from __future__ import annotations

#: name -> (lowest, highest) a real device can report. Generous on purpose: the aim is to catch garbage
#: (a battery of 60 V, a gully 40 m deep), not to second-guess an odd but possible reading.
RANGES: dict[str, tuple[float, float]] = {
    "distance_mm": (-3, 65_535),  # the EM410-RDL reports -1..-3 for "no reading" (flagged invalid)
    "distance2_mm": (0, 65_535),
    "valid_samples": (0, 65_535),
    "battery_v": (0, 5.5),
    "battery_pct": (0, 100),
    "temperature_c": (-60, 125),
    "humidity_pct": (0, 100),
    "illuminance_lux": (0, 200_000),
    "illuminance": (0, 255),
    "occupancy_state": (0, 2),
    "motion_count": (0, 65_535),
    "respiratory_rate": (0, 120),
    "radar_rssi": (-200, 200),
}
