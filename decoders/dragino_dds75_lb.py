"""Dragino DDS75-LB / DDS75-LS ultrasonic distance sensor (successor of LDDS75).

The TTN entry is broken (another product's examples, the DDS75-3-LB JS; devices.md §5.2), so the
reference is Dragino's `DDS75-LB_ChirpstackV4_Decoder` (2025-09), with DS18B20 at /10 like every other
Dragino probe (the 2025-07 TTN-format decoder's /100 is treated as its bug; §5.3).

- fPort 2, normal frame (byte 0 bit 4 clear, 8 bytes): LDDS75's layout, `Distance` a plain number, plus
  `Node_type: "DDS75-LB"`.
- fPort 2, multi-distance frame (byte 0 bit 4 set): `Bat` (& 0x0FFF), up to 20 uint16 distances from
  offset 8, then interrupt flag, DS18B20 and sensor flag in the last 4 bytes; no `Node_type`.
- fPort 5: device status (model, firmware, band, sub-band, battery).
- fPorts 3 (datalog) and 6 (detect mode) are rejected: the vendor decoder returns them as one
  display string with times in the server's local zone, which is nothing a store can rely on.

`normalize`: 0 (no probe) and 20 (below range) are taken to mean what they mean on LDDS75 (inference),
and give `distance_valid = 0`. A multi-distance frame reports its *closest* valid distance (the highest
water level, the conservative reading for flood alerts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders import dragino, level
from decoders.binary import Reader, expect_length
from decoders.dragino_ldds75 import RANGE_MM, ultrasonic_measurements
from decoders.errors import DecodeError, EncodeError
from decoders.registry import Codec, FieldDoc, register
from decoders.types import Normalized

DEVICE = "dragino/dds75-lb"
NODE_TYPE = "DDS75-LB"
MODEL_BYTE = 0x27
MULTI = 0x10  # byte 0 bit 4: multi-distance frame
MAX_EXTRA = 20
NOT_DECODED = {3: "datalog", 6: "detect mode"}
MARKERS = (0, 20)


def decode(f_port: int, payload: bytes) -> dict[str, Any]:
    """fPort 2 (normal or multi-distance frame) or fPort 5 (status)."""
    if f_port == 2:
        return decode_multi(payload) if payload[:1] and payload[0] & MULTI else decode_normal(payload)
    if f_port == 5:
        return decode_status(payload)
    if f_port in NOT_DECODED:
        raise DecodeError(
            f"fPort {f_port} ({NOT_DECODED[f_port]}) is not decoded: the vendor codec returns it as a "
            "locale-dependent display string (devices.md §2 DDS75-LB)"
        )
    raise DecodeError(f"unexpected fPort {f_port} (this device sends data on 2 and status on 5)")


def decode_normal(payload: bytes) -> dict[str, Any]:
    fields, distance = dragino.decode_ultrasonic(payload)
    return {"Node_type": NODE_TYPE, **fields, "Distance": distance}


def decode_multi(payload: bytes) -> dict[str, Any]:
    count, odd = divmod(len(payload) - 12, 2)
    if len(payload) < 12 or odd or count > MAX_EXTRA:
        raise DecodeError(f"multi-distance frame is {len(payload)} bytes, expected 12 + 2*n with n <= {MAX_EXTRA}")
    r = Reader(payload)
    battery = r.uint(2, little=False) & 0x0FFF
    r.pos = 8
    distances = [r.uint(2, little=False) for _ in range(count)]
    return {
        "Bat": battery / 1000,
        "Additional_Distance_Data": distances,
        "Interrupt_flag": r.uint(1, little=False),
        "TempC_DS18B20": dragino.temp_text(r.sint(2, little=False)),
        "Sensor_flag": r.uint(1, little=False),
    }


def decode_status(payload: bytes) -> dict[str, Any]:
    expect_length(payload, 7, what="status payload")
    out: dict[str, Any] = {}
    if payload[0] == MODEL_BYTE:
        out["SENSOR_MODEL"] = NODE_TYPE
    out["FIRMWARE_VERSION"] = f"{payload[1] & 0x0F}.{payload[2] >> 4}.{payload[2] & 0x0F}"
    if payload[3] in dragino.BANDS:
        out["FREQUENCY_BAND"] = dragino.BANDS[payload[3]]
    out["SUB_BAND"] = "NULL" if payload[4] == 0xFF else payload[4]
    out["BAT"] = int.from_bytes(payload[5:7], "big") / 1000
    return out


def encode(decoded: Mapping[str, Any]) -> tuple[int, bytes]:
    """Status (fPort 5) when `FIRMWARE_VERSION` is given, else an fPort 2 frame."""
    if "FIRMWARE_VERSION" in decoded:
        return 5, encode_status(decoded)
    if "Additional_Distance_Data" in decoded:
        return 2, encode_multi(decoded)
    if "Distance" not in decoded:
        raise EncodeError("Distance, Additional_Distance_Data or FIRMWARE_VERSION is required")
    raw = round(dragino.number_in(decoded, "Distance"))
    return 2, dragino.encode_ultrasonic(decoded, raw, battery_mask=dragino.BATTERY_MASK & ~(MULTI << 8))


def encode_multi(decoded: Mapping[str, Any]) -> bytes:
    values = decoded["Additional_Distance_Data"]
    if not isinstance(values, list) or len(values) > MAX_EXTRA:
        raise EncodeError(f"Additional_Distance_Data must be a list of at most {MAX_EXTRA} numbers")
    frame = dragino.encode_ultrasonic(decoded, 0, battery_mask=0x0FFF)
    head = bytes((frame[0] | MULTI, frame[1])) + bytes(6)
    body = b"".join(dragino.uint(v, 16, "Additional_Distance_Data").to_bytes(2, "big") for v in values)
    return head + body + frame[4:]


def encode_status(decoded: Mapping[str, Any]) -> bytes:
    try:
        major, minor, patch = (int(p) for p in str(decoded["FIRMWARE_VERSION"]).split("."))
    except ValueError:
        raise EncodeError(f"FIRMWARE_VERSION={decoded['FIRMWARE_VERSION']!r} is not like '1.3.0'") from None
    if not all(0 <= p <= 15 for p in (major, minor, patch)):
        raise EncodeError("each FIRMWARE_VERSION part must be 0..15")
    sub = decoded.get("SUB_BAND", "NULL")
    return bytes(
        (
            MODEL_BYTE if decoded.get("SENSOR_MODEL", NODE_TYPE) == NODE_TYPE else 0,
            major,
            minor << 4 | patch,
            dragino.band_code(decoded, "FREQUENCY_BAND"),
            0xFF if sub == "NULL" else dragino.uint(dragino.number_in(decoded, "SUB_BAND"), 8, "SUB_BAND"),
        )
    ) + dragino.uint(dragino.number_in(decoded, "BAT", 0) * 1000, 16, "BAT").to_bytes(2, "big")


def normalize(decoded: Mapping[str, Any]) -> Normalized:
    """Battery (fPort 2 or 5), distance (+ validity), probe temperature, interrupt flag."""
    if "BAT" in decoded and "Bat" not in decoded:
        return Normalized(level.measurements({"Bat": decoded["BAT"]}, (level.BATTERY_V,)))
    extra = decoded.get("Additional_Distance_Data")
    if isinstance(extra, list):
        valid = [v for v in map(level.number, extra) if v is not None and v not in MARKERS]
        in_range = [v for v in valid if RANGE_MM[0] <= v <= RANGE_MM[1]]
        distance = min(in_range) if in_range else None
    else:
        raw = level.number(decoded.get("Distance"))
        distance = None if raw in MARKERS else raw
    return Normalized(ultrasonic_measurements(decoded, distance))


FIELDS = (
    FieldDoc(2, "Node_type", 'always "DDS75-LB" (normal frame only)'),
    FieldDoc(2, "Bat", "battery voltage, V (mV & 0x3FFF, & 0x0FFF in the multi-distance frame, / 1000)"),
    FieldDoc(2, "Distance", "distance, mm (number; 0 no probe, 20 invalid reading)"),
    FieldDoc(2, "Additional_Distance_Data", "multi-distance frame: up to 20 distances, mm"),
    FieldDoc(2, "Interrupt_flag", "0 periodic uplink, 1 triggered by the interrupt pin"),
    FieldDoc(2, "TempC_DS18B20", "DS18B20 probe, °C (int16 / 10) as a 2-decimal string"),
    FieldDoc(2, "Sensor_flag", "1 ultrasonic probe detected, 0 not detected"),
    FieldDoc(5, "SENSOR_MODEL", 'model byte 0x27 gives "DDS75-LB" (absent otherwise)'),
    FieldDoc(5, "FIRMWARE_VERSION", 'firmware as "major.minor.patch"'),
    FieldDoc(5, "FREQUENCY_BAND", "LoRaWAN band, e.g. EU868 (absent for an unknown code)"),
    FieldDoc(5, "SUB_BAND", 'sub-band number, "NULL" for 0xFF'),
    FieldDoc(5, "BAT", "battery voltage, V"),
)

CODEC = register(
    Codec(
        device=DEVICE,
        title="Dragino DDS75-LB/LS (ultrasonic, 280-7500 mm)",
        kind="level",
        ports=(2, 5),
        reference="dragino/dragino-end-node-decoder DDS75-LB/DDS75-LB_ChirpstackV4_Decoder.txt (2025-09)",
        decode=decode,
        encode=encode,
        normalize=normalize,
        fields=FIELDS,
    )
)
