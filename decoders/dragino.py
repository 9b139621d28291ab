"""Dragino framing shared by LDDS75, DDS75-LB and LMDS200: fixed big-endian frames (devices.md §1.2).

The 8-byte ultrasonic frame (battery, distance, interrupt flag, DS18B20, sensor flag) is common to
LDDS75 v1.1.4 and DDS75-LB; the codecs differ only in how `Distance` is written and in `Node_type`,
so each passes its own distance formatting here. The fPort 5 status frame's band table is shared too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders.binary import Reader, expect_length
from decoders.errors import EncodeError

#: fPort 5 frequency-band codes (the same table in every Dragino decoder).
BANDS: dict[int, str] = {
    0x01: "EU868",
    0x02: "US915",
    0x03: "IN865",
    0x04: "AU915",
    0x05: "KZ865",
    0x06: "RU864",
    0x07: "AS923",
    0x08: "AS923_1",
    0x09: "AS923_2",
    0x0A: "AS923_3",
    0x0B: "CN470",
    0x0C: "EU433",
    0x0D: "KR920",
    0x0E: "MA869",
}

#: The two top bits of the battery word are status bits, not millivolts.
BATTERY_MASK = 0x3FFF


def temp_text(raw: int) -> str:
    """DS18B20 int16 tenths of °C as the codecs print it: `(raw / 10).toFixed(2)`."""
    return f"{raw / 10:.2f}"


def number_in(decoded: Mapping[str, Any], key: str, default: float | None = None) -> float:
    """A numeric value (or numeric string such as "26.10" / "2799 mm") to encode; `EncodeError` if absent."""
    value = decoded.get(key, default)
    if isinstance(value, str):
        value = value.removesuffix(" mm")
        try:
            return float(value)
        except ValueError:
            raise EncodeError(f"{key}={decoded.get(key)!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EncodeError(f"{key} is required (a number), got {value!r}")
    return float(value)


def uint(value: float, bits: int, key: str, *, signed: bool = False) -> int:
    """Round `value` to an integer that fits `bits` (two's complement when signed) or `EncodeError`."""
    raw = round(value)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not low <= raw <= high:
        raise EncodeError(f"{key}={value} does not fit the frame ({low}..{high} raw)")
    return raw & ((1 << bits) - 1)


def decode_ultrasonic(payload: bytes) -> tuple[dict[str, Any], int]:
    """The 8-byte fPort 2 frame, with `Distance` left for the caller to format: (fields, distance)."""
    expect_length(payload, 8)
    r = Reader(payload)
    battery = r.uint(2, little=False) & BATTERY_MASK
    distance = r.uint(2, little=False)
    interrupt = r.uint(1, little=False)
    temp = r.sint(2, little=False)
    sensor = r.uint(1, little=False)
    fields = {
        "Bat": battery / 1000,
        "Interrupt_flag": interrupt,
        "TempC_DS18B20": temp_text(temp),
        "Sensor_flag": sensor,
    }
    return fields, distance


def encode_ultrasonic(decoded: Mapping[str, Any], distance: int, *, battery_mask: int = BATTERY_MASK) -> bytes:
    """Inverse of `decode_ultrasonic`; optional fields default to a periodic uplink without a probe."""
    battery = uint(number_in(decoded, "Bat") * 1000, 16, "Bat")
    if battery & ~battery_mask:
        raise EncodeError(f"Bat={decoded['Bat']} V is beyond what the frame carries ({battery_mask} mV)")
    temp = uint(number_in(decoded, "TempC_DS18B20", 0.0) * 10, 16, "TempC_DS18B20", signed=True)
    return b"".join(
        (
            battery.to_bytes(2, "big"),
            uint(distance, 16, "Distance").to_bytes(2, "big"),
            uint(number_in(decoded, "Interrupt_flag", 0), 8, "Interrupt_flag").to_bytes(1, "big"),
            temp.to_bytes(2, "big"),
            uint(number_in(decoded, "Sensor_flag", 1), 8, "Sensor_flag").to_bytes(1, "big"),
        )
    )


def band_code(decoded: Mapping[str, Any], key: str) -> int:
    """The band code for a `FREQUENCY_BAND` label; 0 (not in the table, so omitted) when absent."""
    label = decoded.get(key)
    if label is None:
        return 0
    for code, name in BANDS.items():
        if name == label:
            return code
    raise EncodeError(f"{key}={label!r} is not one of {sorted(BANDS.values())}")
