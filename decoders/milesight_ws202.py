"""Milesight WS202: PIR motion and a dark/light daylight flag, for inactivity ("no movement since") rules.

Sensor fields follow the reference, TTN `ws202.js`: `pir` and `light`, where any non-zero byte is the
second label, as that codec tests only `== 0` (the vendor decoder's `daylight` dim/bright names are
not used). TTN's copy knows no FF attribute records, so it returns nothing for the device-info frame
sent after join; we decode those records as the vendor decoder does (WS202's serial number is FF 08,
6 bytes) instead of dead-lettering that frame. The sensor keys are unchanged by this.
"""

from __future__ import annotations

from decoders.care import BATTERY_FIELD, BATTERY_PCT, Label, attribute_fields, milesight_codec
from decoders.milesight import Field, attribute_records, field_record, make_table
from decoders.registry import FieldDoc

TABLE = make_table(
    field_record(0x01, 0x75, Field("battery", "u8")),
    field_record(0x03, 0x00, Field("pir", "u8", labels={0: "normal", 1: "trigger"}, other="trigger")),
    field_record(0x04, 0x00, Field("light", "u8", labels={0: "dark", 1: "light"}, other="light")),
    attribute_records(sn_type=0x08, sn_length=6),
)

#: `daylight` is accepted too, in case TTS ran the vendor decoder (dim/bright, or the README's dark/light).
_LEVEL = {"dark": 0.0, "light": 1.0, "dim": 0.0, "bright": 1.0}
RULES = (
    BATTERY_PCT,
    Label("pir", "motion", {"normal": 0.0, "trigger": 1.0}),
    Label("light", "illuminance", _LEVEL),
    Label("daylight", "illuminance", _LEVEL),
)

FIELDS = (
    BATTERY_FIELD,
    FieldDoc(None, "pir", '03 00: "normal" for 0, otherwise "trigger" (PIR motion)'),
    FieldDoc(None, "light", '04 00: "dark" for 0, otherwise "light"'),
    *attribute_fields(sn="FF 08: serial number, 6 bytes as lowercase hex"),
)

CODEC = milesight_codec(
    device="milesight-iot/ws202",
    title="Milesight WS202 (PIR motion + daylight)",
    reference="TTN vendor/milesight-iot/ws202.js (+ vendor FF attribute records)",
    table=TABLE,
    rules=RULES,
    fields=FIELDS,
)
