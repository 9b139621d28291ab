"""Dragino LDDS75 ultrasonic distance sensor (280-7500 mm), firmware >= 1.1.4.

Output follows TTN `vendor/dragino/ldds75-114.js` exactly, strings included (`"2799 mm"`, `"26.10"`),
because that is what TTS puts in `decoded_payload`; the legacy `ldds75.js` mis-decodes 8-byte frames
and is not followed (devices.md §2, §5.4). Only fPort 2 carries data; the frame must be exactly 8 bytes
(the TTN codec does not check, and would turn a short frame into NaN strings).

`normalize`: "No Sensor" (0), "Invalid Reading" (20, below the 280 mm minimum), `Sensor_flag = 0`
and readings outside 280-7500 mm give `distance_valid = 0`. `TempC_DS18B20 = "0.00"` is what the codec
prints when no probe is fitted, so it is not reported as 0 °C.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders import dragino, level
from decoders.binary import expect_port
from decoders.errors import EncodeError
from decoders.registry import Codec, FieldDoc, register
from decoders.types import Normalized

DEVICE = "dragino/ldds75"
PORT = 2
RANGE_MM = (280.0, 7500.0)
#: Distance words the codec writes as text instead of "<n> mm".
SPECIAL = {0: "No Sensor", 20: "Invalid Reading"}
NO_PROBE_TEMP = "0.00"


def decode(f_port: int, payload: bytes) -> dict[str, Any]:
    """The fPort 2 frame as `ldds75-114.js` returns it."""
    expect_port(f_port, PORT)
    fields, distance = dragino.decode_ultrasonic(payload)
    fields["Distance"] = SPECIAL.get(distance, f"{distance} mm")
    return fields


def distance_raw(value: Any) -> int:
    """The distance word for a `Distance` value ("2799 mm", "No Sensor" or a plain number)."""
    for raw, label in SPECIAL.items():
        if value == label:
            return raw
    raw = round(dragino.number_in({"Distance": value}, "Distance"))
    if raw in SPECIAL:
        raise EncodeError(f"Distance={value!r} is sent as {SPECIAL[raw]!r}, not as a reading")
    return raw


def encode(decoded: Mapping[str, Any]) -> tuple[int, bytes]:
    """fPort 2 frame; `Distance` is required, the flags and temperature default to a periodic uplink."""
    if "Distance" not in decoded:
        raise EncodeError("Distance is required")
    return PORT, dragino.encode_ultrasonic(decoded, distance_raw(decoded["Distance"]))


def reading(value: Any) -> float | None:
    """The distance in mm from "<n> mm" or a number (the vendor decoder's variant); None for markers."""
    if isinstance(value, str):
        text = value.removesuffix(" mm")
        return float(text) if text.isdigit() else None
    number = level.number(value)
    return None if number is None or number in SPECIAL else number


def normalize(decoded: Mapping[str, Any]) -> Normalized:
    """Battery, distance (+ validity), probe temperature and the interrupt flag."""
    return Normalized(ultrasonic_measurements(decoded, reading(decoded.get("Distance"))))


def ultrasonic_measurements(decoded: Mapping[str, Any], distance: float | None) -> list[level.Measurement]:
    """Measurements of the 8-byte ultrasonic frame (also used by DDS75-LB)."""
    if level.number(decoded.get("Sensor_flag")) == 0:
        distance = None
    found = level.measurements(decoded, (level.BATTERY_V,))
    found += level.distance(distance, *RANGE_MM)
    temp = decoded.get("TempC_DS18B20")
    if temp not in (NO_PROBE_TEMP, None, 0):
        found += level.temperature(temp)
    found += level.flag(decoded.get("Interrupt_flag"), "interrupt")
    return found


FIELDS = (
    FieldDoc(PORT, "Bat", "battery voltage, V (uint16 BE mV & 0x3FFF / 1000)"),
    FieldDoc(PORT, "Distance", 'distance as "<n> mm"; "No Sensor" for 0, "Invalid Reading" for 20'),
    FieldDoc(PORT, "Interrupt_flag", "0 periodic uplink, 1 triggered by the interrupt pin"),
    FieldDoc(PORT, "TempC_DS18B20", 'DS18B20 probe, °C as a 2-decimal string; "0.00" without a probe'),
    FieldDoc(PORT, "Sensor_flag", "1 ultrasonic probe detected, 0 not detected"),
)

CODEC = register(
    Codec(
        device=DEVICE,
        title="Dragino LDDS75 (ultrasonic, 280-7500 mm)",
        kind="level",
        ports=(PORT,),
        reference="TTN vendor/dragino/ldds75-114.js",
        decode=decode,
        encode=encode,
        normalize=normalize,
        fields=FIELDS,
    )
)
