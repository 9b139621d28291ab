"""Dragino LMDS200 24 GHz radar distance sensor, two targets (now sold as MDS200-LB).

Output follows TTN `vendor/dragino/lmds200.js`: fPort 2 data (7 bytes), fPort 4 configuration report
(9 bytes), fPort 5 status (7 bytes); other ports are rejected like the codec's "unknown FPort". Lengths
are checked exactly (the codec would read missing bytes as 0).

Units: no codec states the unit of `dis1`/`dis2` (devices.md §5.10). `normalize` reads them as mm
(`UNIT_MM`, one constant to change once a real device or the manual settles it); 0 means "no target"
(the single-target case leaves `dis2` at 0). `Ver` is the status word's hex digits read as decimal;
a word whose hex digits are not all decimal is rejected rather than mimicking `parseInt`'s truncation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders import dragino, level
from decoders.binary import Reader, expect_length
from decoders.errors import DecodeError, EncodeError
from decoders.registry import Codec, FieldDoc, register
from decoders.types import Event, Normalized

DEVICE = "dragino/lmds200"
MODEL_BYTE = 0x0C
MODEL = "LMDS200"
#: mm per unit of `dis1`/`dis2` (unconfirmed; see the module docstring).
UNIT_MM = 1.0
#: Config report fields: (key, width in bytes).
CONFIG = (("TDC", 3), ("ATDC", 1), ("Alarm_min", 2), ("Alarm_max", 2), ("Interrupt", 1))


def decode(f_port: int, payload: bytes) -> dict[str, Any]:
    """fPort 2 data, 4 configuration, 5 status."""
    if f_port == 2:
        expect_length(payload, 7)
        r = Reader(payload)
        bat, dis1, dis2, flags = (r.uint(n, little=False) for n in (2, 2, 2, 1))
        return {
            "Bat": bat / 1000,
            "dis1": dis1,
            "dis2": dis2,
            "DALARM_count": flags >> 2 & 0x3F,
            "Distance_alarm": flags >> 1 & 1,
            "Interrupt_alarm": flags & 1,
        }
    if f_port == 4:
        expect_length(payload, 9, what="configuration payload")
        r = Reader(payload)
        return {key: r.uint(n, little=False) for key, n in CONFIG}
    if f_port == 5:
        return decode_status(payload)
    raise DecodeError(f"unexpected fPort {f_port} (unknown FPort: this device sends on 2, 4 and 5)")


def decode_status(payload: bytes) -> dict[str, Any]:
    expect_length(payload, 7, what="status payload")
    out: dict[str, Any] = {}
    if payload[0] == MODEL_BYTE:
        out["SENSOR_MODEL"] = MODEL
    digits = payload[1:3].hex().lstrip("0") or "0"
    if not digits.isdigit():
        raise DecodeError(f"firmware version word 0x{payload[1:3].hex()} is not decimal digits")
    out["Ver"] = int(digits)
    if payload[3] in dragino.BANDS:
        out["FREQUENCY_BAND"] = dragino.BANDS[payload[3]]
    out["Sub_band"] = payload[4]
    out["BAT"] = int.from_bytes(payload[5:7], "big") / 1000
    return out


def encode(decoded: Mapping[str, Any]) -> tuple[int, bytes]:
    """fPort 5 if `Ver` is given, fPort 4 if `TDC` is, else an fPort 2 data frame."""
    u = dragino.uint
    if "Ver" in decoded:
        ver = str(round(dragino.number_in(decoded, "Ver")))
        if len(ver) > 4:
            raise EncodeError(f"Ver={decoded['Ver']} has more than 4 digits")
        head = bytes((MODEL_BYTE if decoded.get("SENSOR_MODEL", MODEL) == MODEL else 0,))
        return 5, b"".join(
            (
                head,
                bytes.fromhex(ver.zfill(4)),
                bytes((dragino.band_code(decoded, "FREQUENCY_BAND"),)),
                u(dragino.number_in(decoded, "Sub_band", 0), 8, "Sub_band").to_bytes(1, "big"),
                u(dragino.number_in(decoded, "BAT", 0) * 1000, 16, "BAT").to_bytes(2, "big"),
            )
        )
    if "TDC" in decoded:
        return 4, b"".join(u(dragino.number_in(decoded, key, 0), 8 * n, key).to_bytes(n, "big") for key, n in CONFIG)
    flags = (
        u(dragino.number_in(decoded, "DALARM_count", 0), 6, "DALARM_count") << 2
        | u(dragino.number_in(decoded, "Distance_alarm", 0), 1, "Distance_alarm") << 1
        | u(dragino.number_in(decoded, "Interrupt_alarm", 0), 1, "Interrupt_alarm")
    )
    words = (u(dragino.number_in(decoded, key, dflt) * scale, 16, key) for key, dflt, scale in _DATA_WORDS)
    return 2, b"".join(w.to_bytes(2, "big") for w in words) + bytes((flags,))


#: fPort 2 words: (key, default, raw units per decoded unit).
_DATA_WORDS = (("Bat", None, 1000), ("dis1", None, 1), ("dis2", 0, 1))


def _bat_mv(decoded: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"Bat": decoded.get("Bat", decoded.get("BAT"))}


def normalize(decoded: Mapping[str, Any]) -> Normalized:
    """Battery, both targets' distances, interrupt flag and a `distance_alarm` event."""
    found = level.measurements(_bat_mv(decoded), (level.BATTERY_V,))
    if "dis1" not in decoded:
        return Normalized(found)
    dis1, dis2 = (level.number(decoded.get(k)) for k in ("dis1", "dis2"))
    found += level.distance(dis1 * UNIT_MM if dis1 else None, 1.0, 65535.0 * UNIT_MM)
    if dis2 and 0 < dis2 <= 65535:
        found.append(level.Measurement("distance2_mm", dis2 * UNIT_MM))
    found += level.flag(decoded.get("Interrupt_alarm"), "interrupt")
    events = []
    if level.number(decoded.get("Distance_alarm")) == 1:
        attrs = {k: decoded[k] for k in ("DALARM_count", "dis1", "dis2") if k in decoded}
        events.append(Event("distance_alarm", attrs))
    return Normalized(found, events)


FIELDS = (
    FieldDoc(2, "Bat", "battery voltage, V (uint16 BE mV / 1000)"),
    FieldDoc(2, "dis1", "distance to the closest target (raw uint16; unit unconfirmed, read as mm)"),
    FieldDoc(2, "dis2", "distance to the next target behind it (0: none)"),
    FieldDoc(2, "DALARM_count", "distance alarm count (6 bits)"),
    FieldDoc(2, "Distance_alarm", "1 when the distance alarm is raised"),
    FieldDoc(2, "Interrupt_alarm", "1 when the uplink was triggered by the interrupt pin"),
    FieldDoc(4, "TDC", "uplink interval (uint24; presumably seconds)"),
    FieldDoc(4, "ATDC", "alarm interval (uint8)"),
    FieldDoc(4, "Alarm_min", "lower alarm threshold (uint16)"),
    FieldDoc(4, "Alarm_max", "upper alarm threshold (uint16)"),
    FieldDoc(4, "Interrupt", "interrupt mode (uint8)"),
    FieldDoc(5, "SENSOR_MODEL", 'model byte 0x0C gives "LMDS200" (absent otherwise)'),
    FieldDoc(5, "Ver", "firmware version: the word's hex digits read as decimal (01 00 -> 100)"),
    FieldDoc(5, "FREQUENCY_BAND", "LoRaWAN band, e.g. EU868 (absent for an unknown code)"),
    FieldDoc(5, "Sub_band", "sub-band (raw byte)"),
    FieldDoc(5, "BAT", "battery voltage, V"),
)

CODEC = register(
    Codec(
        device=DEVICE,
        title="Dragino LMDS200 (24 GHz radar, two targets)",
        kind="level",
        ports=(2, 4, 5),
        reference="TTN vendor/dragino/lmds200.js",
        decode=decode,
        encode=encode,
        normalize=normalize,
        fields=FIELDS,
    )
)
