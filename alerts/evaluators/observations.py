"""What the learned detectors are fed: one observation per stored reading, already put in the terms
the detector reasons in (water above the invert for gullies, room and activity for care flats).

The engine builds these from `store.records.Reading` and the device's registry row, so the detectors
never see the store's types and stay pure: state + observation -> new state + decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class LevelObs:
    """One gully level reading. `level_mm` is the surface above the pot floor and `excess_mm` the part
    above the outlet invert (the water that should drain away); both None when the sensor had no echo
    (`distance_valid` False) or the gully's geometry is not registered."""

    at: datetime
    distance_mm: float | None
    distance_valid: bool | None
    level_mm: float | None
    excess_mm: float | None
    fill_pct: float | None
    tilted: bool | None = None


@dataclass(frozen=True, slots=True)
class RoomObs:
    """One reading from a sensor in a care flat: which device, in which room (`care_room`: bedroom,
    bathroom, hall, kitchen, living, or anything else the registry says), and what it saw. Any field
    the model does not report is None."""

    at: datetime
    device_id: str
    room: str | None
    motion: bool | None = None  # a PIR trigger
    motion_count: int | None = None  # motion events since the last report
    occupied: bool | None = None  # presence / occupancy
    in_bed: bool | None = None
    lying_down: bool | None = None

    @property
    def active(self) -> bool:
        """Evidence of someone moving: a PIR trigger or counted motion (presence alone is not: a
        person motionless in a chair is present)."""
        return bool(self.motion) or bool(self.motion_count)
