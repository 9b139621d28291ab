"""The device-payload layer: what a level sensor's physical state looks like in each model's own
decoded form, and the frame that carries it (`decoders.encode`).

Scenario models think in millimetres, battery life and flags; each device model has its own field
names, units and special values (LDDS75 `"Invalid Reading"`, EM410-RDL 0xFFFD, DL-MBX 0 valid samples).
Values are rounded to what the frame can carry, so the dict equals what decoding the frame gives back
and can go straight into `decoded_payload`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import decoders


class LevelState(NamedTuple):
    """What a distance sensor measures at one uplink. `distance_mm` None means no usable echo.
    (A tuple: one is made per uplink.)"""

    distance_mm: float | None
    battery: float  # remaining life, 0..1
    temperature_c: float | None  # None: no temperature probe fitted
    tilted: bool = False
    alarm: bool = False  # uplink sent early because of a level alarm


def _volts(battery: float, empty: float = 3.0, full: float = 3.65) -> float:
    """Lithium thionyl chloride cells sit near 3.6 V most of their life, then fall away."""
    return round(empty + (full - empty) * max(0.0, min(1.0, battery)), 3)


def _percent(battery: float) -> int:
    return round(100 * max(0.0, min(1.0, battery)))


def _mm(distance: float, low: int, high: int) -> int:
    return min(max(round(distance), low), high)


def _ldds75(s: LevelState) -> dict[str, Any]:
    distance = "Invalid Reading" if s.distance_mm is None else f"{_mm(s.distance_mm, 280, 7500)} mm"
    return {
        "Bat": _volts(s.battery),
        "Distance": distance,
        "Interrupt_flag": 1 if s.alarm else 0,
        "TempC_DS18B20": "0.00" if s.temperature_c is None else f"{round(s.temperature_c, 1):.2f}",
        "Sensor_flag": 1,
    }


def _em310(s: LevelState) -> dict[str, Any]:
    distance = 0 if s.distance_mm is None else _mm(s.distance_mm, 25, 4500)
    return {"battery": _percent(s.battery), "distance": distance, "tilt": "tilt" if s.tilted else "normal"}


def _em500(s: LevelState) -> dict[str, Any]:
    distance = 0 if s.distance_mm is None else _mm(s.distance_mm, 250, 10000)
    return {"battery": _percent(s.battery), "distance": distance}


def _em410(s: LevelState) -> dict[str, Any]:
    # The periodic record does not map 0xFFFD: it decodes as int16 -3 ("no target").
    distance = -3 if s.distance_mm is None else _mm(s.distance_mm, 30, 10000)
    return {
        "battery": _percent(s.battery),
        "temperature": round(s.temperature_c or 0.0, 1),
        "distance": distance,
        "position": "tilt" if s.tilted else "normal",
    }


def _dl_mbx(s: LevelState) -> dict[str, Any]:
    distance, samples = (0, 0) if s.distance_mm is None else (_mm(s.distance_mm, 300, 5000), 10)
    return {
        "protocol_version": 2,
        "device_id": 303,
        "distance": {"displayName": "Distance", "unit": "mm", "value": distance},
        "number_of_valid_samples": {"displayName": "Number of valid samples", "value": samples},
        "battery_voltage": {
            "displayName": "Battery voltage",
            "unit": "V",
            "value": _volts(s.battery, 3.0, 3.6),
        },
    }


LevelFormat = Callable[[LevelState], dict[str, Any]]

#: Level sensor models the gully scenarios can deploy, with their decoded form.
LEVEL_FORMATS: dict[str, LevelFormat] = {
    "dragino/ldds75": _ldds75,
    "milesight-iot/em310-udl": _em310,
    "milesight-iot/em500-udl": _em500,
    "milesight-iot/em410-rdl": _em410,
    "decentlab/dl-mbx": _dl_mbx,
}
#: Models whose payload can say "no echo" (the others simply report their last plausible value).
NO_ECHO_MODELS = frozenset({"dragino/ldds75", "milesight-iot/em410-rdl", "decentlab/dl-mbx"})
#: Models with an accelerometer that reports tilt.
TILT_MODELS = frozenset({"milesight-iot/em310-udl", "milesight-iot/em410-rdl"})


def level_distance(model: str, decoded: Mapping[str, Any]) -> float | None:
    """The distance (mm) a decoded level payload reports, or None for the device's no-echo values;
    the inverse of the formats above, used by tests and label checks."""
    if model == "dragino/ldds75":
        text = str(decoded["Distance"])
        return float(text.split()[0]) if text.endswith(" mm") else None
    if model == "decentlab/dl-mbx":
        if decoded["number_of_valid_samples"]["value"] == 0:
            return None
        return float(decoded["distance"]["value"])
    value = float(decoded["distance"])
    return None if value <= 0 else value


def available(models: list[str]) -> list[str]:
    """The models whose codec is registered (codecs land independently of the simulator)."""
    out = []
    for model in models:
        try:
            decoders.get(model)
        except decoders.DecodeError:
            continue
        out.append(model)
    return out


def encode(model: str, decoded: Mapping[str, Any]) -> tuple[int, bytes]:
    """`(f_port, payload)` for `decoded` through the model's codec."""
    return decoders.encode(model, decoded)
