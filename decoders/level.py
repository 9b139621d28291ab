"""Normalisation helpers shared by the level/distance codecs.

Like `decoders.care`, everything here tolerates missing keys, wrong types and NaN (TTS's
`decoded_payload` may come from another codec copy), emitting nothing rather than raising. The one
level-specific rule is about distance: a reading is either a usable echo (`distance_mm` plus
`distance_valid = 1`) or not (`distance_valid = 0` and no `distance_mm`), so a "no sensor" marker or an
out-of-range value can never be plotted as a water level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from decoders.care import Numeric, measurements, number
from decoders.types import Event, Measurement, reject

__all__ = [
    "BATTERY_PCT",
    "BATTERY_V",
    "TILT_LABELS",
    "Event",
    "Measurement",
    "Numeric",
    "distance",
    "flag",
    "items",
    "measurements",
    "milesight_common",
    "number",
    "temperature",
    "utc",
]

#: Battery voltage as Dragino/Decentlab report it (V); anything above 5 V is not a LoRaWAN cell.
BATTERY_V = Numeric("Bat", "battery_v", 0.0, 5.0)
#: Milesight's battery percentage.
BATTERY_PCT = Numeric("battery", "battery_pct", 0.0, 100.0)
#: DS18B20 and the radar's own thermometer both work within -55..125 °C.
TEMPERATURE_RANGE = (-55.0, 125.0)


def distance(value: float | None, low: float, high: float, time: datetime | None = None) -> list[Measurement]:
    """`distance_mm` + `distance_valid` for a usable reading in `[low, high]`, else `distance_valid = 0`.

    `value=None` means the device reported "no reading" (a marker, a status string, zero samples).
    """
    if value is None or not math.isfinite(value) or not low <= value <= high:
        return [Measurement("distance_valid", 0.0, time)]
    return [Measurement("distance_mm", float(value), time), Measurement("distance_valid", 1.0, time)]


def flag(value: Any, name: str, time: datetime | None = None) -> list[Measurement]:
    """A 0/1 device flag as a boolean measurement; anything else (absent, 7, "x") emits nothing."""
    raw = number(value)
    return [Measurement(name, raw, time)] if raw in (0.0, 1.0) and raw is not None else []


def temperature(value: Any, time: datetime | None = None) -> list[Measurement]:
    """`temperature_c` from a number or a numeric string ("26.10"), kept only within the probe range."""
    raw = number(value)
    if raw is None and isinstance(value, str):
        try:
            raw = float(value)
        except ValueError:
            return []
    low, high = TEMPERATURE_RANGE
    if raw is None or not math.isfinite(raw):
        return []
    if not low <= raw <= high:
        reject("temperature_c", raw, time)
        return []
    return [Measurement("temperature_c", raw, time)]


def utc(timestamp: Any) -> datetime | None:
    """A device's unix-seconds timestamp as an aware UTC datetime, or None if it is not one."""
    raw = number(timestamp)
    if raw is None or not 0 <= raw < 2**32:
        return None
    return datetime.fromtimestamp(raw, tz=UTC)


def items(decoded: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The dict entries of the list `decoded[key]` (history, event), skipping anything malformed."""
    value = decoded.get(key) if isinstance(decoded, Mapping) else None
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


#: Milesight tilt labels: `position` (vendor / EM410) or `tilt` (EM310 2023 TTN codec).
TILT_LABELS = {"normal": 0.0, "tilt": 1.0}


def milesight_common(decoded: Mapping[str, Any]) -> tuple[list[Measurement], list[Event]]:
    """Battery %, tilt (`position` or `tilt`) and the FF reset record, for the EM-series codecs."""
    found = measurements(decoded, (BATTERY_PCT,))
    for key in ("position", "tilt"):
        label = decoded.get(key)
        if isinstance(label, str) and label in TILT_LABELS:
            found.append(Measurement("tilted", TILT_LABELS[label]))
    events = [Event("device_reset")] if decoded.get("reset_event") == "reset" else []
    return found, events
