"""What decoders hand to the rest of the system: normalised measurements and discrete events.

The measurement vocabulary is fixed here (name -> unit and meaning) so that every device that measures
the same quantity names it the same way, and `docs/measurements.md` is generated from `VOCABULARY`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

#: Every measurement name a decoder may emit: name -> (unit, meaning). Units are in the names.
VOCABULARY: dict[str, tuple[str, str]] = {
    "distance_mm": ("mm", "distance from the sensor face to the nearest target (water, gully floor, person)"),
    "distance2_mm": ("mm", "distance to the second radar target behind the first (LMDS200)"),
    "distance_valid": ("bool", "false when the device says this uplink's distance is not a usable echo"),
    "valid_samples": ("count", "number of valid ultrasonic samples in the measurement window"),
    "battery_v": ("V", "battery voltage"),
    "battery_pct": ("%", "battery level as the device reports it"),
    "temperature_c": ("°C", "air or probe temperature"),
    "humidity_pct": ("%RH", "relative humidity"),
    "illuminance_lux": ("lx", "light level in lux"),
    "illuminance": ("level", "coarse light level: 0 dark/dim, 1 light/bright"),
    "occupied": ("bool", "someone is in the room or region the sensor watches"),
    "occupancy_state": ("level", "Elsys occupancy: 0 unoccupied, 1 pending, 2 occupied"),
    "motion": ("bool", "PIR motion seen since the last uplink"),
    "motion_count": ("count", "PIR motion count since the last uplink"),
    "tilted": ("bool", "the device reports it is tilted or moved from its mounting"),
    "interrupt": ("bool", "uplink triggered by the interrupt pin or an alarm rather than the timer"),
    "respiratory_rate": ("breaths/min", "respiratory rate measured by radar"),
    "radar_rssi": ("dB", "radar echo signal strength as the device reports it"),
    "fall_detected": ("bool", "the radar's detection status is 'fall'"),
    "lying_down": ("bool", "the radar's target status is 'lying_down'"),
    "in_bed": ("bool", "the radar's detection status is 'in_bed'"),
}


#: The widest range a real device can report, per measurement name: ingest dead-letters anything outside
#: (stage `range`) instead of putting it on a flood dashboard. Generous on purpose: the aim is to catch
#: garbage from any codec, ours or a third party's (a battery of 60 V, a gully 40 m deep), not to
#: second-guess an odd but possible reading; each codec's own rules are tighter. Booleans and levels
#: without an entry are not range-checked.
PHYSICAL_RANGES: dict[str, tuple[float, float]] = {
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


class Measurement(NamedTuple):
    """One normalised value. `time` is set only when the device timestamped it (history records).

    A NamedTuple (immutable, compared by value) rather than a frozen dataclass: several are built per
    uplink on the ingest hot path, and a frozen dataclass's `__init__` costs several times a tuple's."""

    name: str
    value: float
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """A discrete device event such as a VS373 alarm.

    `kind` is a stable snake_case name (`alarm`, `distance_alarm`, `distance_exception`, `device_reset`);
    `attrs` keeps the device's own fields (alarm id, type, status, region); `time` is set when the
    device timestamped the event (history records), otherwise the uplink's time applies.
    """

    kind: str
    attrs: dict[str, Any] = field(default_factory=dict)
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Normalized:
    """Measurements and events from one uplink.

    `rejected` holds values a codec left out because they cannot be physically real (a battery of
    255 %): the rest of the uplink is still good (a fall alarm must not be lost to one corrupt byte), but
    the rejection must not be silent, so ingest dead-letters each one with its reason.
    """

    measurements: list[Measurement] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    rejected: list[Measurement] = field(default_factory=list)


_REJECTED: ContextVar[list[Measurement] | None] = ContextVar("lorawatch_rejected", default=None)


def reject(name: str, value: float, time: datetime | None = None) -> None:
    """Record a value a codec's `normalize` drops as physically impossible (see `Normalized.rejected`).

    A context variable keeps every codec's `normalize(decoded) -> Normalized` signature simple: the
    helpers that check ranges report here, and `decoders.normalize` attaches what was reported.
    """
    sink = _REJECTED.get()
    if sink is not None:
        sink.append(Measurement(name, value, time))


def normalize_collecting(normalize: Callable[[Any], Normalized], decoded: Any) -> Normalized:
    """Run a codec's `normalize` and attach what it reported through `reject()`.

    A plain function rather than a context manager: this runs once per uplink on the ingest hot path.
    """
    sink: list[Measurement] = []
    token = _REJECTED.set(sink)
    try:
        result = normalize(decoded)
    finally:
        _REJECTED.reset(token)
    if not sink:
        return result
    return Normalized(result.measurements, result.events, [*result.rejected, *sink])
