"""Milesight EM310-UDL compact ultrasonic distance sensor with a tilt flag (IP67).

Output follows the 2023 TTN `em310-udl.js`, which matches the repository example: the tilt record is
`tilt`, and any non-zero byte reads as "tilt" (the current vendor codec calls it `position` and says
"unknown" for other bytes; devices.md §5.6). The 2023 codec predates the FF attribute records; we decode
them anyway, as the current codec does, so a join's device-info frame is not dead-lettered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders import level, milesight
from decoders.milesight import Field, field_record
from decoders.milesight_em500_udl import ATTRIBUTE_DOCS
from decoders.registry import Codec, FieldDoc, register
from decoders.types import Normalized

DEVICE = "milesight-iot/em310-udl"

TABLE = milesight.make_table(
    milesight.attribute_records(),
    field_record(0x01, 0x75, Field("battery", "u8")),
    field_record(0x03, 0x82, Field("distance", "u16")),
    field_record(0x04, 0x00, Field("tilt", "u8", labels={0: "normal", 1: "tilt"}, other="tilt")),
)


def decode(f_port: int, payload: bytes) -> dict[str, Any]:
    """TLV records on any fPort (the device uses 85)."""
    del f_port
    return milesight.decode_tlv(payload, TABLE)


def encode(decoded: Mapping[str, Any]) -> tuple[int, bytes]:
    """The records whose keys are present, on fPort 85."""
    return milesight.PORT, milesight.encode_tlv(decoded, TABLE)


def normalize(decoded: Mapping[str, Any]) -> Normalized:
    """Battery %, distance (+ validity), tilted, and a reset event."""
    found, events = level.milesight_common(decoded)
    if "distance" in decoded:
        found += level.distance(level.number(decoded["distance"]), 0.0, 65535.0)
    return Normalized(found, events)


FIELDS = (
    FieldDoc(milesight.PORT, "battery", "01 75: battery level, % (uint8)"),
    FieldDoc(milesight.PORT, "distance", "03 82: distance, mm (uint16 LE)"),
    FieldDoc(milesight.PORT, "tilt", '04 00: "normal" (0) or "tilt" (any other byte)'),
    *ATTRIBUTE_DOCS,
)

CODEC = register(
    Codec(
        device=DEVICE,
        title="Milesight EM310-UDL (ultrasonic, tilt flag)",
        kind="level",
        ports=(milesight.PORT,),
        reference="TTN vendor/milesight-iot/em310-udl.js (2023)",
        decode=decode,
        encode=encode,
        normalize=normalize,
        fields=FIELDS,
    )
)
