"""Milesight VS370: radar + PIR room presence with a coarse dim/bright light flag.

Follows the vendor decoder (`vs-series/vs370/vs370-decoder.js`; TTN's `vs370.js` is not in the
index): unmapped bytes are "unknown", illuminance 0xFE means light detection is disabled, and the FF
attribute records are decoded (device_status is always "on" there).
"""

from __future__ import annotations

from decoders.care import BATTERY_FIELD, BATTERY_PCT, OCCUPIED, Label, attribute_fields, milesight_codec
from decoders.milesight import Field, attribute_records, field_record, make_table
from decoders.registry import FieldDoc

TABLE = make_table(
    field_record(0x01, 0x75, Field("battery", "u8")),
    field_record(0x03, 0x00, Field("occupancy", "u8", labels={0: "vacant", 1: "occupied"})),
    field_record(0x04, 0x00, Field("illuminance", "u8", labels={0: "dim", 1: "bright", 0xFE: "disable"})),
    attribute_records(),
)

RULES = (
    BATTERY_PCT,
    Label("occupancy", "occupied", OCCUPIED),
    Label("illuminance", "illuminance", {"dim": 0.0, "bright": 1.0}),
)

FIELDS = (
    BATTERY_FIELD,
    FieldDoc(None, "occupancy", '03 00: "vacant" (0), "occupied" (1), else "unknown"'),
    FieldDoc(None, "illuminance", '04 00: "dim" (0), "bright" (1), "disable" (0xFE: detection off), else "unknown"'),
    *attribute_fields(),
)

CODEC = milesight_codec(
    device="milesight-iot/vs370",
    title="Milesight VS370 (radar + PIR presence)",
    reference="vendor Milesight-IoT/SensorDecoders vs-series/vs370/vs370-decoder.js",
    table=TABLE,
    rules=RULES,
    fields=FIELDS,
)
