"""Elsys ERS Eye: PIR motion count, occupancy state and the 8×8 Grid-Eye heat map, plus T/RH/light/vdd.

Output follows TTN `vendor/elsys/elsys.js`, which ignores fPort (TTN's example uses 1; Elsys devices
default to 5), so any port is accepted. `occupancy` stays the codec's raw integer (0 unoccupied,
1 pending, 2 occupied, per Elsys's documentation); `normalize` turns it into `occupancy_state` and, for
the two settled states only, `occupied`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders.care import Numeric, measurements, number
from decoders.elsys import GRIDEYE, decode_records, encode_records, scalar
from decoders.registry import Codec, FieldDoc, register
from decoders.types import Measurement, Normalized

DEVICE = "elsys/ers-eye"
#: Elsys's default data port; decode accepts any port, as the reference codec does.
DEFAULT_PORT = 5

TYPES = (
    scalar(0x01, "temperature", 2, signed=True, scale=10),
    scalar(0x02, "humidity", 1),
    scalar(0x04, "light", 2),
    scalar(0x05, "motion", 1),
    scalar(0x07, "vdd", 2),
    scalar(0x11, "occupancy", 1),
    GRIDEYE,
)

#: Sensor limits: the ERS operates from 0 to 50 °C, but its thermistor reports beyond that; anything
#: outside -40..85 °C is electronics failing, not air.
RULES = (
    Numeric("temperature", "temperature_c", -40.0, 85.0),
    Numeric("humidity", "humidity_pct", 0.0, 100.0),
    Numeric("light", "illuminance_lux", 0.0, 65535.0),
    Numeric("motion", "motion_count", 0.0, 255.0),
    Numeric("vdd", "battery_v", 0.0, 5.0, scale=0.001),
    Numeric("occupancy", "occupancy_state", 0.0, 2.0),
)
#: Only the settled occupancy states become `occupied`; 1 (pending: someone entering or leaving) does not.
_OCCUPIED = {0.0: 0.0, 2.0: 1.0}


def decode(f_port: int, payload: bytes) -> dict[str, Any]:
    """Decode an ERS Eye uplink on any fPort (the reference codec ignores it)."""
    del f_port
    return decode_records(payload, TYPES)


def encode(decoded: Mapping[str, Any]) -> tuple[int, bytes]:
    """Records for the keys present, on Elsys's default port."""
    return DEFAULT_PORT, encode_records(decoded, TYPES)


def normalize(decoded: Mapping[str, Any]) -> Normalized:
    """Climate, PIR and occupancy measurements; the heat map has no vocabulary name and is left out."""
    found = measurements(decoded, RULES)
    if not isinstance(decoded, Mapping):
        return Normalized(found)
    motion = number(decoded.get("motion"))
    if motion is not None and 0 <= motion <= 255:
        found.append(Measurement("motion", float(motion > 0)))
    state = number(decoded.get("occupancy"))
    if state is not None and state in _OCCUPIED:
        found.append(Measurement("occupied", _OCCUPIED[state]))
    return Normalized(found)


FIELDS = (
    FieldDoc(None, "temperature", "type 0x01: air temperature, °C (int16 BE / 10)"),
    FieldDoc(None, "humidity", "type 0x02: relative humidity, % (uint8)"),
    FieldDoc(None, "light", "type 0x04: light level, lux (uint16 BE)"),
    FieldDoc(None, "motion", "type 0x05: PIR motion count since the last uplink (uint8)"),
    FieldDoc(None, "vdd", "type 0x07: supply voltage, mV (uint16 BE)"),
    FieldDoc(None, "occupancy", "type 0x11: raw occupancy, 0 unoccupied, 1 pending, 2 occupied"),
    FieldDoc(None, "grideye", "type 0x13: 64 Grid-Eye pixel temperatures, °C (ref byte + pixel/10)"),
)

CODEC = register(
    Codec(
        device=DEVICE,
        title="Elsys ERS Eye (PIR + Grid-Eye thermopile)",
        kind="care",
        ports=(1, DEFAULT_PORT),
        reference="TTN vendor/elsys/elsys.js",
        decode=decode,
        encode=encode,
        normalize=normalize,
        fields=FIELDS,
    )
)
