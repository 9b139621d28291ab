"""Milesight VS373 mmWave radar fall-detection sensor: room/target status, regions, breathing, alarms.

Follows the vendor decoder (`vs-series/vs373/vs373-decoder.js`, same logic as TTN `vs373.js`), which
devices.md takes as authoritative over the README where they disagree: alarm_type 0 is "fall" and
alarm_status 1..4 are triggered/deactivated/ignored/respiratory_status. Choices made here, and why:

- Legacy region occupancy (04 F9, firmware v1.0.1) is inverted on the wire (raw 1 = vacant, anything
  else occupied), exactly as the decoder does; v1.0.2's 0A B3 bitmask is not inverted.
- `device_status` maps {0 off, 1 on}, so the usual power-on byte FF is "unknown" (unlike EM/VS370).
- The decoder has no FF FE (reset) record; configuration acknowledgements (other FE/FF and F8/F9 records)
  are out of scope, so they end parsing like any unknown record.
- A 0A B3 region count above 32 cannot be described by its 32-bit mask (the JS would wrap the shift);
  such a frame is rejected as corrupt rather than inventing regions.
- Alarms (06 FB, `events[]`) and history items (20 CE, `history[]`) become `Event(kind="alarm")`;
  history events carry the device's own timestamp, and an item without a usable one is skipped rather
  than misdated to the uplink's time.

`encode` writes the newest record layout for each value (07 B0, 0A B3, 0B/0C B4) except that out-of-bed
times for exactly regions 1-4 that fit 16 bits use the v1.0.1 05 FA record; a partial group of regions
is an `EncodeError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from decoders.care import Label, Numeric, attribute_fields, milesight_codec, number
from decoders.errors import DecodeError, EncodeError
from decoders.milesight import (
    Field,
    Record,
    append,
    attribute_records,
    field_record,
    label_code,
    make_table,
    pack_int,
    read_int,
)
from decoders.registry import FieldDoc
from decoders.types import Event, Measurement

DETECTION = {0: "normal", 1: "vacant", 2: "in_bed", 3: "out_of_bed", 4: "fall"}
TARGET = {0: "normal", 1: "motionless", 2: "abnormal", 3: "lying_down"}
REGION_TYPE = {0: "custom", 1: "bed", 2: "door", 3: "ignore", 255: "unset"}
ALARM_TYPE = {
    0: "fall",
    1: "motionless",
    2: "dwell",
    3: "out_of_bed",
    4: "occupied",
    5: "vacant",
    6: "bradynea",
    7: "tachypnea",
    8: "lying_down",
}
ALARM_STATUS = {1: "alarm_triggered", 2: "alarm_deactivated", 3: "alarm_ignored", 4: "respiratory_status"}
RESPIRATORY = {1: "no_data_input", 2: "normal", 3: "tachypnea", 4: "bradypnea", 5: "undetectable"}
#: Alarm types whose last byte names a region (out_of_bed, bradynea, tachypnea).
REGION_ALARMS = frozenset({3, 6, 7})
#: Region ids the device can have (09 B2 types six of them; the 0A B3 mask has 32 bits).
MAX_REGIONS = 32


def _region_keys(suffix: str, first: int, last: int) -> list[str]:
    return [f"region_{n}_{suffix}" for n in range(first, last + 1)]


def _status_record(channel: int, type_: int, fmt: str) -> Record:
    return field_record(
        channel,
        type_,
        Field("detection_status", "u8", labels=DETECTION),
        Field("target_status", "u8", labels=TARGET),
        Field("use_time_now", fmt),
        Field("use_time_today", fmt),
    )


def _times_fields(fmt: str, first: int, last: int) -> tuple[Field, ...]:
    return tuple(Field(k, fmt) for k in _region_keys("out_of_bed_time", first, last))


#: Out-of-bed time records: v1.0.1 05 FA (u16, regions 1-4), v1.0.2 0B/0C B4 (u24, regions 1-3, 4-6).
_FIELDS_OF = {
    (0x05, 0xFA): _times_fields("u16", 1, 4),
    (0x0B, 0xB4): _times_fields("u24", 1, 3),
    (0x0C, 0xB4): _times_fields("u24", 4, 6),
}


# --- region occupancy ------------------------------------------------------------------------------


def _legacy_occupancy(data: bytes, out: dict[str, Any]) -> None:
    """04 F9: firmware v1.0.1 sends 0 for occupied and 1 for vacant; the decoder inverts it."""
    for key, raw in zip(_region_keys("occupancy", 1, 4), data, strict=True):
        out[key] = "vacant" if raw == 1 else "occupied"


def _bitmask_occupancy(data: bytes, out: dict[str, Any]) -> None:
    """0A B3: region count, then a u32 mask; bit j set means region j+1 is occupied."""
    count, mask = data[0], read_int("u32", data, 1)
    if count > MAX_REGIONS:
        msg = f"region occupancy record claims {count} regions; its 32-bit mask describes at most 32"
        raise DecodeError(msg)
    for j in range(count):
        out[f"region_{j + 1}_occupancy"] = "occupied" if mask >> j & 1 else "vacant"


def _encode_bitmask(decoded: Mapping[str, Any]) -> list[bytes]:
    """Regions 1..N present in `decoded` (they must be contiguous from 1) as one 0A B3 record."""
    present = [n for n in range(1, MAX_REGIONS + 1) if f"region_{n}_occupancy" in decoded]
    if not present:
        return []
    if present != list(range(1, len(present) + 1)):
        msg = f"region occupancy must cover regions 1..N without gaps, got {present}"
        raise EncodeError(msg)
    mask = 0
    for n in present:
        bit = label_code({0: "vacant", 1: "occupied"}, decoded[f"region_{n}_occupancy"], f"region_{n}_occupancy")
        if bit not in (0, 1):
            raise EncodeError(f"region_{n}_occupancy must be 'vacant' or 'occupied'")
        mask |= bit << (n - 1)
    return [bytes([len(present)]) + pack_int("u32", mask)]


# --- out-of-bed times ------------------------------------------------------------------------------


def _legacy_times(decoded: Mapping[str, Any]) -> bool:
    """True when exactly regions 1-4 have out-of-bed times and they fit 05 FA's 16 bits."""
    keys = _region_keys("out_of_bed_time", 1, 6)
    if [k in decoded for k in keys] != [True] * 4 + [False] * 2:
        return False
    return all(isinstance(decoded[k], int) and 0 <= decoded[k] <= 0xFFFF for k in keys[:4])


def _times_encoder(record: Record, *, legacy: bool) -> Record:
    """`record` encoded only when the legacy 05 FA choice (above) is, or is not, the one that applies.

    A u24 group with some but not all of its regions is an `EncodeError`, not a silent drop.
    """
    assert record.encode is not None
    encode_body = record.encode
    keys = [f.key for f in _FIELDS_OF[record.key]]

    def encode(decoded: Mapping[str, Any]) -> list[bytes]:
        if _legacy_times(decoded) != legacy:
            return []
        given = [k in decoded for k in keys]
        if not legacy and any(given) and not all(given):
            missing = [k for k, ok in zip(keys, given, strict=True) if not ok]
            msg = f"out-of-bed times go in groups of regions 1-3 and 4-6 (or exactly 1-4); missing {missing}"
            raise EncodeError(msg)
        return encode_body(decoded)

    return replace(record, encode=encode)


# --- alarms and history ----------------------------------------------------------------------------


def _alarm(data: bytes) -> dict[str, Any]:
    """alarm_id u16, alarm_type u8, alarm_status u8, region byte (kept only for region alarm types)."""
    alarm: dict[str, Any] = {
        "alarm_id": read_int("u16", data),
        "alarm_type": ALARM_TYPE.get(data[2], "unknown"),
        "alarm_status": ALARM_STATUS.get(data[3], "unknown"),
    }
    if data[2] in REGION_ALARMS:
        alarm["region_id"] = data[4]
    return alarm


def _alarm_bytes(alarm: Any) -> bytes:
    if not isinstance(alarm, Mapping):
        raise EncodeError(f"an alarm must be a dict, got {alarm!r}")
    missing = {"alarm_id", "alarm_type", "alarm_status"} - set(alarm)
    if missing:
        raise EncodeError(f"alarm {dict(alarm)!r} lacks {sorted(missing)}")
    type_code = label_code(ALARM_TYPE, alarm["alarm_type"], "alarm_type")
    region = alarm.get("region_id", 0) if type_code in REGION_ALARMS else 0
    if type_code in REGION_ALARMS and "region_id" not in alarm:
        raise EncodeError(f"alarm type {alarm['alarm_type']!r} needs a region_id")
    return (
        pack_int("u16", alarm["alarm_id"])
        + pack_int("u8", type_code)
        + pack_int("u8", label_code(ALARM_STATUS, alarm["alarm_status"], "alarm_status"))
        + pack_int("u8", region)
    )


def _items(decoded: Mapping[str, Any], key: str) -> list[Any]:
    value = decoded.get(key, [])
    if not isinstance(value, list):
        raise EncodeError(f"{key} must be a list of alarm dicts")
    return value


def _decode_event(data: bytes, out: dict[str, Any]) -> None:
    append(out, "events", _alarm(data))


def _decode_history(data: bytes, out: dict[str, Any]) -> None:
    append(out, "history", {"timestamp": read_int("u32", data), **_alarm(data[4:])})


def _encode_events(decoded: Mapping[str, Any]) -> list[bytes]:
    return [_alarm_bytes(alarm) for alarm in _items(decoded, "events")]


def _encode_history(decoded: Mapping[str, Any]) -> list[bytes]:
    bodies = []
    for item in _items(decoded, "history"):
        if not isinstance(item, Mapping) or "timestamp" not in item:
            raise EncodeError(f"a history item needs a timestamp: {item!r}")
        bodies.append(pack_int("u32", item["timestamp"]) + _alarm_bytes(item))
    return bodies


TABLE = make_table(
    _status_record(0x07, 0xB0, "u24"),
    replace(_status_record(0x03, 0xF8, "u16"), encode=None),
    Record(0x0A, 0xB3, 5, "region occupancy", _bitmask_occupancy, _encode_bitmask),
    Record(0x04, 0xF9, 4, "legacy region occupancy", _legacy_occupancy),
    field_record(0x09, 0xB2, *(Field(k, "u8", labels=REGION_TYPE) for k in _region_keys("type", 1, 6))),
    (_times_encoder(field_record(*key, *fields), legacy=key == (0x05, 0xFA)) for key, fields in _FIELDS_OF.items()),
    field_record(
        0x08,
        0xB1,
        Field("respiratory_status", "u8", labels=RESPIRATORY),
        Field("respiratory_rate", "u16", scale=100),
    ),
    Record(0x06, 0xFB, 5, "alarm", _decode_event, _encode_events),
    Record(0x20, 0xCE, 9, "history", _decode_history, _encode_history),
    (r for r in attribute_records(device_status={0: "off", 1: "on", 0xFF: "unknown"}) if r.type != 0xFE),
)


# --- normalisation ---------------------------------------------------------------------------------


def _is(label: str, labels: Mapping[int, str]) -> dict[str, float]:
    """1.0 for `label`, 0.0 for every other known label ("unknown" emits nothing)."""
    return {other: float(other == label) for other in labels.values()}


RULES = (
    Label("detection_status", "fall_detected", _is("fall", DETECTION)),
    Label("detection_status", "in_bed", _is("in_bed", DETECTION)),
    Label("detection_status", "occupied", {k: 1.0 - v for k, v in _is("vacant", DETECTION).items()}),
    Label("target_status", "lying_down", _is("lying_down", TARGET)),
)
#: Breathing is measurable only in these states; "no_data_input"/"undetectable" come with a 0 rate.
_MEASURED_BREATHING = frozenset({"normal", "tachypnea", "bradypnea"})


def _event(item: Any, time: datetime | None = None) -> Event | None:
    """An alarm Event from a decoded `events[]`/`history[]` item, keeping only well-typed fields."""
    if not isinstance(item, Mapping):
        return None
    attrs: dict[str, Any] = {}
    for key, kind in (("alarm_id", int), ("alarm_type", str), ("alarm_status", str), ("region_id", int)):
        value = item.get(key)
        if isinstance(value, kind) and not isinstance(value, bool):
            attrs[key] = value
    return Event("alarm", attrs, time) if "alarm_type" in attrs or "alarm_id" in attrs else None


def _history_time(item: Any) -> datetime | None:
    raw = number(item.get("timestamp")) if isinstance(item, Mapping) else None
    return datetime.fromtimestamp(raw, tz=UTC) if raw is not None and 0 <= raw < 2**32 else None


def _list(decoded: Mapping[str, Any], key: str) -> list[Any]:
    value = decoded.get(key)
    return value if isinstance(value, list) else []


def events(decoded: Mapping[str, Any]) -> list[Event]:
    """Live alarms (untimed: the uplink's time applies) then history alarms at the device's timestamps."""
    live = [_event(item) for item in _list(decoded, "events")]
    timed = [(item, _history_time(item)) for item in _list(decoded, "history")]
    past = [_event(item, time) for item, time in timed if time is not None]
    return [event for event in live + past if event is not None]


class _Breathing(Numeric):
    """`respiratory_rate` only when `respiratory_status` (if given) says breathing was measured."""

    __slots__ = ()

    def measure(self, decoded: Mapping[str, Any]) -> Measurement | None:
        status = decoded.get("respiratory_status", "normal")
        return super().measure(decoded) if status in _MEASURED_BREATHING else None


FIELDS = (
    FieldDoc(None, "detection_status", "03 F8 / 07 B0: normal, vacant, in_bed, out_of_bed, fall (else unknown)"),
    FieldDoc(None, "target_status", "03 F8 / 07 B0: normal, motionless, abnormal, lying_down (else unknown)"),
    FieldDoc(None, "use_time_now", "03 F8 (u16) / 07 B0 (u24): current use time; unit not documented"),
    FieldDoc(None, "use_time_today", "03 F8 (u16) / 07 B0 (u24): use time today; unit not documented"),
    *(
        FieldDoc(None, k, "04 F9 (regions 1-4, raw 1 = vacant, inverted) / 0A B3 bitmask: occupied or vacant")
        for k in _region_keys("occupancy", 1, 6)
    ),
    *(FieldDoc(None, k, "09 B2: custom, bed, door, ignore, unset (else unknown)") for k in _region_keys("type", 1, 6)),
    *(
        FieldDoc(None, k, "05 FA (u16, regions 1-4) / 0B, 0C B4 (u24): out-of-bed time, s (README)")
        for k in _region_keys("out_of_bed_time", 1, 6)
    ),
    FieldDoc(None, "respiratory_status", "08 B1: no_data_input, normal, tachypnea, bradypnea, undetectable"),
    FieldDoc(None, "respiratory_rate", "08 B1: breaths per minute (u16 / 100)"),
    FieldDoc(
        None,
        "events",
        "06 FB: list of {alarm_id, alarm_type, alarm_status, region_id (out_of_bed/bradynea/tachypnea)}",
    ),
    FieldDoc(None, "history", "20 CE: list of {timestamp (unix s), alarm_id, alarm_type, alarm_status, region_id?}"),
    *(
        f
        for f in attribute_fields(device_status='FF 0B: "off" (0), "on" (1), else "unknown"')
        if f.name != "reset_event"
    ),
)

CODEC = milesight_codec(
    device="milesight-iot/vs373",
    title="Milesight VS373 (mmWave radar fall detection)",
    reference="vendor Milesight-IoT/SensorDecoders vs-series/vs373/vs373-decoder.js (= TTN vs373.js)",
    table=TABLE,
    rules=(*RULES, _Breathing("respiratory_rate", "respiratory_rate", 0.0, 120.0)),
    fields=FIELDS,
    events=events,
)
