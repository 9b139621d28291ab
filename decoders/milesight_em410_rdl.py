"""Milesight EM410-RDL radar distance/level sensor (rainwater/wastewater modes, tilt flag).

Output follows the vendor decoder (`em-series/em410-rdl`; the 2025 TTN JS has the same uplink logic).
Alarm (84 82, 94 82) and exception (B4 82) records append to `event[]`, and the alarm records also set
the top-level `distance`; history records (20 CE) append to `history[]` with the sensor status strings
the codec uses for 0xFFFD/0xFFFE/0xFFFF. Configuration acknowledgements (FE/F8/F9) are out of scope and
end the walk like any unknown record (devices.md §1.1).

The periodic 04 82 distance does not map the special values, so −1/−2/−3 (0xFFFF/FE/FD) come out as
numbers, as in the codec; `normalize` treats them and any negative distance as "no reading" (§5.9).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders import level, milesight
from decoders.errors import EncodeError
from decoders.milesight import Field, Record, field_record, label_code, pack_int, read_int
from decoders.milesight_em500_udl import ATTRIBUTE_DOCS
from decoders.registry import Codec, FieldDoc, register
from decoders.types import Event, Measurement, Normalized

DEVICE = "milesight-iot/em410-rdl"
ALARMS = {0: "threshold alarm release", 1: "threshold alarm", 2: "mutation alarm"}
EXCEPTIONS = {0: "blind spot alarm release", 1: "blind spot alarm", 2: "no target", 3: "sensor exception"}
#: History event bits, in bit order.
HISTORY_EVENTS = (
    "threshold alarm",
    "threshold alarm release",
    "blind spot alarm",
    "blind spot alarm release",
    "mutation alarm",
    "tilt alarm",
)
DISTANCE_STATUS = {0xFFFD: "no target", 0xFFFF: "sensor exception", 0xFFFE: "disabled"}
TEMPERATURE_STATUS = {0xFFFE: "disabled", 0xFFFF: "sensor exception"}
#: Exception raw distances the codec leaves out of the event.
OMITTED = (0xFFFD, 0xFFFF)
NO_READING = {"no target", "sensor exception", "blind spot alarm"}
RANGE_MM = (0.0, 32767.0)

THRESHOLD = (Field("distance", "i16"), Field("distance_alarm", "u8", labels=ALARMS))
MUTATION = (
    Field("distance", "i16"),
    Field("distance_mutation", "i16"),
    Field("distance_alarm", "u8", labels=ALARMS),
)


def _alarm(fields: tuple[Field, ...]) -> milesight.RecordDecoder:
    def decode(data: bytes, out: dict[str, Any]) -> None:
        item = milesight.read_fields(fields, data, {})
        out["distance"] = item["distance"]
        milesight.append(out, "event", item)

    return decode


def _exception(data: bytes, out: dict[str, Any]) -> None:
    raw = read_int("u16", data)
    item: dict[str, Any] = {} if raw in OMITTED else {"distance": read_int("i16", data)}
    item["distance_exception"] = EXCEPTIONS.get(data[2], "unknown")
    milesight.append(out, "event", item)


def _history(data: bytes, out: dict[str, Any]) -> None:
    item: dict[str, Any] = {"timestamp": read_int("u32", data)}
    raw_distance, raw_temp = read_int("u16", data, 4), read_int("u16", data, 6)
    if raw_distance in DISTANCE_STATUS:
        item["distance_sensor_status"] = DISTANCE_STATUS[raw_distance]
    else:
        item["distance"] = read_int("i16", data, 4)
    if raw_temp in TEMPERATURE_STATUS:
        item["temperature_sensor_status"] = TEMPERATURE_STATUS[raw_temp]
    else:
        item["temperature"] = read_int("i16", data, 6) / 10
    events = [name for bit, name in enumerate(HISTORY_EVENTS) if data[10] >> bit & 1]
    if events:
        item["event"] = events
    if "mutation alarm" in events:
        item["distance_mutation"] = read_int("i16", data, 8)
    milesight.append(out, "history", item)


def _encode_history(decoded: Mapping[str, Any]) -> list[bytes]:
    return [_history_body(item) for item in decoded.get("history", [])]


def _history_body(item: Mapping[str, Any]) -> bytes:
    distance = _status_or_value(item, "distance", DISTANCE_STATUS, 1)
    temp = _status_or_value(item, "temperature", TEMPERATURE_STATUS, 10)
    events = item.get("event", [])
    mask = sum(1 << HISTORY_EVENTS.index(e) for e in events if e in HISTORY_EVENTS)
    if len(set(events)) != len(events) or any(e not in HISTORY_EVENTS for e in events):
        raise EncodeError(f"history event {events!r}: each must be one of {HISTORY_EVENTS}")
    mutation = item.get("distance_mutation", 0) if "mutation alarm" in events else 0
    return b"".join(
        (
            Field("timestamp", "u32").encode(item.get("timestamp")),
            distance,
            temp,
            Field("distance_mutation", "i16").encode(mutation),
            bytes((mask,)),
        )
    )


def _status_or_value(item: Mapping[str, Any], key: str, statuses: Mapping[int, str], scale: int) -> bytes:
    status = item.get(f"{key}_sensor_status")
    if status is not None:
        return pack_int("u16", label_code(statuses, status, f"{key}_sensor_status"))
    raw = Field(key, "i16", scale=scale).encode(item.get(key))
    if read_int("u16", raw) in statuses:
        raise EncodeError(f"{key}={item.get(key)} is a status marker, not a value")
    return raw


def _has_alarm(decoded: Mapping[str, Any]) -> bool:
    return any("distance_alarm" in e for e in level.items(decoded, "event"))


TABLE = milesight.make_table(
    milesight.attribute_records(),
    field_record(0x01, 0x75, Field("battery", "u8")),
    field_record(0x03, 0x67, Field("temperature", "i16", scale=10)),
    field_record(0x04, 0x82, Field("distance", "i16"), when=lambda d: not _has_alarm(d)),
    field_record(0x05, 0x00, Field("position", "u8", labels={0: "normal", 1: "tilt"})),
    field_record(0x06, 0xC7, Field("radar_signal_rssi", "i16", scale=100)),
    Record(0x84, 0x82, 3, "threshold alarm", _alarm(THRESHOLD)),
    Record(0x94, 0x82, 5, "mutation alarm", _alarm(MUTATION)),
    Record(0xB4, 0x82, 3, "distance exception", _exception),
    Record(0x20, 0xCE, 11, "history", _history, _encode_history),
)


def decode(f_port: int, payload: bytes) -> dict[str, Any]:
    """TLV records on any fPort (the device uses 85)."""
    del f_port
    return milesight.decode_tlv(payload, TABLE)


def _event_record(item: Mapping[str, Any]) -> bytes:
    if "distance_exception" in item:
        code = label_code(EXCEPTIONS, item["distance_exception"], "distance_exception")
        if "distance" in item:
            distance = Field("distance", "i16").encode(item["distance"])
            if read_int("u16", distance) in OMITTED:
                raise EncodeError(f"exception distance {item['distance']} is dropped by the codec")
        else:
            distance = pack_int("u16", 0xFFFF)
        return milesight.tlv(0xB4, 0x82, distance + pack_int("u8", code))
    if "distance_mutation" in item:
        return milesight.tlv(0x94, 0x82, milesight.write_fields(MUTATION, item))
    return milesight.tlv(0x84, 0x82, milesight.write_fields(THRESHOLD, item))


def encode(decoded: Mapping[str, Any]) -> tuple[int, bytes]:
    """Plain and history records from the table, then `event[]` records in list order, on fPort 85."""
    events = decoded.get("event", [])
    if not isinstance(events, list):
        raise EncodeError("event must be a list")
    payload = milesight.encode_records(decoded, TABLE) + b"".join(_event_record(e) for e in events)
    if not payload:
        raise EncodeError(f"nothing to encode in {sorted(decoded)}")
    return milesight.PORT, payload


def _distance(value: Any, time: Any = None) -> list[Measurement]:
    return level.distance(level.number(value), *RANGE_MM, time)


def normalize(decoded: Mapping[str, Any]) -> Normalized:
    """Battery %, temperature, distance (+ validity), tilt, radar RSSI, alarm/exception events, history."""
    found, events = level.milesight_common(decoded)
    found += level.temperature(decoded.get("temperature"))
    found += level.measurements(decoded, (level.Numeric("radar_signal_rssi", "radar_rssi", -327.68, 327.67),))
    for item in level.items(decoded, "event"):
        kind = "distance_exception" if "distance_exception" in item else "distance_alarm"
        events.append(Event(kind, dict(item)))
    if "distance" in decoded:
        found += _distance(decoded["distance"])
    elif any(e.attrs.get("distance_exception") in NO_READING for e in events):
        found += level.distance(None, *RANGE_MM)
    for item in level.items(decoded, "history"):
        found_h, events_h = _history_normalized(item)
        found += found_h
        events += events_h
    return Normalized(found, events)


def _history_normalized(item: Mapping[str, Any]) -> tuple[list[Measurement], list[Event]]:
    time = level.utc(item.get("timestamp"))
    if time is None:
        return [], []
    found = _distance(item.get("distance"), time) if "distance" in item or "distance_sensor_status" in item else []
    found += level.temperature(item.get("temperature"), time)
    events: list[Event] = []
    labels = item.get("event")
    for label in labels if isinstance(labels, list) else []:
        if label == "tilt alarm":
            found.append(Measurement("tilted", 1.0, time))
        elif isinstance(label, str) and "blind spot" in label:
            events.append(Event("distance_exception", {"distance_exception": label}, time))
        elif label in ALARMS.values():
            attrs = {
                "distance_alarm": label,
                **{k: item[k] for k in ("distance", "distance_mutation") if k in item},
            }
            events.append(Event("distance_alarm", attrs, time))
    return found, events


FIELDS = (
    FieldDoc(milesight.PORT, "battery", "01 75: battery level, % (uint8)"),
    FieldDoc(milesight.PORT, "temperature", "03 67: temperature, °C (int16 LE / 10)"),
    FieldDoc(milesight.PORT, "distance", "04 82: distance, mm (int16 LE); also set by 84 82 / 94 82 alarms"),
    FieldDoc(milesight.PORT, "position", '05 00: "normal" or "tilt" ("unknown" otherwise)'),
    FieldDoc(milesight.PORT, "radar_signal_rssi", "06 C7: radar signal strength (int16 LE / 100)"),
    FieldDoc(
        milesight.PORT,
        "event",
        "84 82 / 94 82 / B4 82: list of {distance?, distance_mutation?, distance_alarm | distance_exception}",
    ),
    FieldDoc(
        milesight.PORT,
        "history",
        "20 CE: list of {timestamp, distance | distance_sensor_status, temperature | "
        "temperature_sensor_status, event?, distance_mutation?}",
    ),
    *ATTRIBUTE_DOCS,
)

CODEC = register(
    Codec(
        device=DEVICE,
        title="Milesight EM410-RDL (radar distance/level)",
        kind="level",
        ports=(milesight.PORT,),
        reference="Milesight-IoT/SensorDecoders em-series/em410-rdl/em410-rdl-decoder.js",
        decode=decode,
        encode=encode,
        normalize=normalize,
        fields=FIELDS,
    )
)
