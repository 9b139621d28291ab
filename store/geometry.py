"""Gully geometry: from a level sensor's distance reading to a water level and how full the gully is.

Both heights are measured from the floor of the gully pot (the registry's `sensor_height_mm` and
`outlet_invert_mm`, see docs/devices.md):

    level_mm = sensor_height_mm - distance_mm
    fill_pct = 100 * (level_mm - outlet_invert_mm) / (sensor_height_mm - outlet_invert_mm)

so 0 % is water standing at the outlet invert (a working gully at rest) and 100 % is water at the sensor
face. Neither is clamped: below 0 % the pot holds less than its trapped water (dry weather, a leak),
above 100 % the reading is nonsense (a distance below zero). Pure functions: no I/O, `None` in -> `None` out.
"""

from __future__ import annotations

import math


def water_level_mm(distance_mm: float | None, sensor_height_mm: float | None) -> float | None:
    """The water surface above the pot floor, or None when the distance (no echo) or the geometry
    (an unregistered gully) is unknown, or either is not a finite number."""
    if distance_mm is None or sensor_height_mm is None:
        return None
    if not (math.isfinite(distance_mm) and math.isfinite(sensor_height_mm)):
        return None
    return sensor_height_mm - distance_mm


def fill_pct(level_mm: float | None, sensor_height_mm: float | None, outlet_invert_mm: float | None) -> float | None:
    """How full the gully is above its outlet invert, in percent of the space up to the sensor face.
    None when any input is unknown or not finite, or when the geometry is impossible (the invert at or
    above the sensor: the registry refuses that, but a hand-edited row could hold it)."""
    if level_mm is None or sensor_height_mm is None or outlet_invert_mm is None:
        return None
    if not (math.isfinite(level_mm) and math.isfinite(sensor_height_mm) and math.isfinite(outlet_invert_mm)):
        return None
    span = sensor_height_mm - outlet_invert_mm
    if span <= 0:
        return None
    return 100.0 * (level_mm - outlet_invert_mm) / span


def gully_fill_pct(
    distance_mm: float | None, sensor_height_mm: float | None, outlet_invert_mm: float | None
) -> float | None:
    """`fill_pct` straight from a distance reading (None whenever the level is unknown)."""
    return fill_pct(water_level_mm(distance_mm, sensor_height_mm), sensor_height_mm, outlet_invert_mm)
