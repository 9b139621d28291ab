"""Milesight EM500-UDL ultrasonic distance sensor (external probe, IP66).

Output follows the vendor decoder (`Milesight-IoT/SensorDecoders em-series/em500-udl`): `distance` is
uint16 mm (the TTN JS's signed metres contradict its own example; devices.md §5.5). TLV framing and
the FF attribute records come from `decoders.milesight`; fPort is ignored, as the codec does.

The 83 E9 alarm record follows the vendor decoder's /10 on both distances, although the vendor's
codec.json calls them mm: that scaling is unresolved, so `normalize` reports an alarm record as a
`distance_alarm` event carrying the decoded values and does not turn its distance into `distance_mm`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders import level, milesight
from decoders.milesight import Field, field_record, list_record
from decoders.registry import Codec, FieldDoc, register
from decoders.types import Event, Normalized

DEVICE = "milesight-iot/em500-udl"
ALARMS = {0: "normal", 1: "threshold_alarm", 2: "mutation_alarm"}


def _no_alarm(decoded: Mapping[str, Any]) -> bool:
    return "distance_alarm" not in decoded


TABLE = milesight.make_table(
    milesight.attribute_records(),
    field_record(0x01, 0x75, Field("battery", "u8")),
    field_record(0x03, 0x82, Field("distance", "u16"), when=_no_alarm),
    field_record(
        0x83,
        0xE9,
        Field("distance", "u16", scale=10),
        Field("distance_mutation", "u16", scale=10),
        Field("distance_alarm", "u8", labels=ALARMS),
        name="distance alarm",
    ),
    list_record(0x20, 0xCE, "history", Field("timestamp", "u32"), Field("distance", "u16")),
)


def decode(f_port: int, payload: bytes) -> dict[str, Any]:
    """TLV records on any fPort (the device uses 85)."""
    del f_port
    return milesight.decode_tlv(payload, TABLE)


def encode(decoded: Mapping[str, Any]) -> tuple[int, bytes]:
    """The records whose keys are present, on fPort 85."""
    return milesight.PORT, milesight.encode_tlv(decoded, TABLE)


def normalize(decoded: Mapping[str, Any]) -> Normalized:
    """Battery %, distance (+ validity), history distances with their times, alarm and reset events."""
    found, events = level.milesight_common(decoded)
    if "distance_alarm" in decoded:
        attrs = {k: decoded[k] for k in ("distance", "distance_mutation", "distance_alarm") if k in decoded}
        events.append(Event("distance_alarm", attrs))
    elif "distance" in decoded:
        found += level.distance(level.number(decoded["distance"]), 0.0, 65535.0)
    for item in level.items(decoded, "history"):
        time = level.utc(item.get("timestamp"))
        if time is not None and "distance" in item:
            found += level.distance(level.number(item["distance"]), 0.0, 65535.0, time)
    return Normalized(found, events)


ATTRIBUTE_DOCS = (
    FieldDoc(None, "ipso_version", 'FF 01: IPSO version "vX.Y" (after join/reboot)'),
    FieldDoc(None, "hardware_version", 'FF 09: hardware version "vX.Y"'),
    FieldDoc(None, "firmware_version", 'FF 0A: firmware version "vX.Y"'),
    FieldDoc(None, "tsl_version", 'FF FF: TSL version "vX.Y"'),
    FieldDoc(None, "sn", "FF 16: serial number, lowercase hex"),
    FieldDoc(None, "lorawan_class", 'FF 0F: "Class A", "Class B", "Class C" or "Class CtoB"'),
    FieldDoc(None, "reset_event", 'FF FE: "reset" after a reboot'),
    FieldDoc(None, "device_status", 'FF 0B: always "on"'),
)

FIELDS = (
    FieldDoc(milesight.PORT, "battery", "01 75: battery level, % (uint8)"),
    FieldDoc(milesight.PORT, "distance", "03 82: distance, mm (uint16 LE); 83 E9: alarm distance / 10"),
    FieldDoc(milesight.PORT, "distance_mutation", "83 E9: distance change that raised the alarm (/ 10)"),
    FieldDoc(milesight.PORT, "distance_alarm", '83 E9: "normal", "threshold_alarm" or "mutation_alarm"'),
    FieldDoc(milesight.PORT, "history", "20 CE: list of {timestamp (unix s), distance (mm)}"),
    *ATTRIBUTE_DOCS,
)

CODEC = register(
    Codec(
        device=DEVICE,
        title="Milesight EM500-UDL (ultrasonic, external probe)",
        kind="level",
        ports=(milesight.PORT,),
        reference="Milesight-IoT/SensorDecoders em-series/em500-udl/em500-udl-decoder.js",
        decode=decode,
        encode=encode,
        normalize=normalize,
        fields=FIELDS,
    )
)
