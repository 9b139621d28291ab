"""Milesight VS330: time-of-flight occupancy for a bathroom or cubicle ("occupied too long" rules).

Sensor fields follow the reference, TTN `vs330.js`: `calibration` (the vendor names it
`calibration_status`), and any non-zero byte is "occupied"/"success" since that codec tests only
`== 0`. TTN's copy knows no FF attribute records; we decode them as the vendor decoder does so the
device-info frame after join is not dead-lettered. `distance` is the ToF distance to the target in mm.
"""

from __future__ import annotations

from decoders.care import (
    BATTERY_FIELD,
    BATTERY_PCT,
    OCCUPIED,
    Label,
    Numeric,
    attribute_fields,
    milesight_codec,
)
from decoders.milesight import Field, attribute_records, field_record, make_table
from decoders.registry import FieldDoc

TABLE = make_table(
    field_record(0x01, 0x75, Field("battery", "u8")),
    field_record(0x02, 0x82, Field("distance", "u16")),
    field_record(0x03, 0x8E, Field("occupancy", "u8", labels={0: "vacant", 1: "occupied"}, other="occupied")),
    field_record(0x04, 0x8E, Field("calibration", "u8", labels={0: "failed", 1: "success"}, other="success")),
    attribute_records(),
)

RULES = (
    BATTERY_PCT,
    Numeric("distance", "distance_mm", 0.0, 65535.0),
    Label("occupancy", "occupied", OCCUPIED),
)

FIELDS = (
    BATTERY_FIELD,
    FieldDoc(None, "distance", "02 82: ToF distance to the target, mm (uint16 LE)"),
    FieldDoc(None, "occupancy", '03 8E: "vacant" for 0, otherwise "occupied"'),
    FieldDoc(None, "calibration", '04 8E: "failed" for 0, otherwise "success"'),
    *attribute_fields(),
)

CODEC = milesight_codec(
    device="milesight-iot/vs330",
    title="Milesight VS330 (ToF bathroom occupancy)",
    reference="TTN vendor/milesight-iot/vs330.js (+ vendor FF attribute records)",
    table=TABLE,
    rules=RULES,
    fields=FIELDS,
)
