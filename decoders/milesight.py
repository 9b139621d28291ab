"""Milesight channel TLV framing, shared by the EM-series level sensors and the VS/WS care sensors.

A Milesight uplink is a run of `[channel_id:1][channel_type:1][data:N]` records, little-endian, with N
fixed per (id, type) pair. Every device codec is then just a table of `Record`s, so the framing rules
live in one place:

- **Empty payload** -> `DecodeError` (the radio never sends one on fPort 85; it is a forwarding bug).
- **Known record cut short** -> `DecodeError` ("truncated … record"): the vendor JS would read
  `undefined` bytes and emit garbage numbers, which we refuse to store.
- **Unknown pair first** (nothing decoded yet) -> `DecodeError` ("unknown record type"), so a payload
  from the wrong device or port is not silently stored as an empty reading.
- **Unknown pair after valid records** -> stop and keep what was decoded, as the vendor codecs do
  (`break`), so a newer firmware's extra records do not lose the values we understand. A lone trailing
  byte counts as an unknown pair.

API (stable; the care codecs import it):

- `Field(key, fmt, scale=1, labels=None, other="unknown")`; `field_record(channel, type, *fields,
  when=None)` for plain records, `list_record(channel, type, key, *fields)` for records appended to a
  list (history); `Record(channel, type, length, name, decode, encode)` for anything custom, with
  `read_fields`/`write_fields` to (de)serialise a run of fields.
- `make_table(*records)` -> `Table`; `decode_tlv(payload, table)` -> dict; `encode_tlv(decoded, table)`
  -> bytes (each record's `encode` picks the values it carries out of the dict; `EncodeError` if none
  does); `encode_records` is the same without that check, for codecs that append custom records.
- fPort: the vendor codecs ignore it, and so do ours; `PORT` (85) is what `encode` returns.
- `attribute_records(device_status=None, sn_type=0x16, sn_length=8)`: the FF attribute records.
- `tlv(channel, type, body)`, `read_int(fmt, data, offset)`, `pack_int(fmt, value)`, `append(out, key,
  item)`: small helpers for custom records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from decoders.errors import DecodeError, EncodeError

#: fPort every Milesight LoRaWAN device sends its uplinks on.
PORT = 85

#: integer formats: name -> (byte width, signed). All little-endian.
FORMATS: dict[str, tuple[int, bool]] = {
    "u8": (1, False),
    "i8": (1, True),
    "u16": (2, False),
    "i16": (2, True),
    "u24": (3, False),
    "u32": (4, False),
    "i32": (4, True),
}

RecordDecoder = Callable[[bytes, dict[str, Any]], None]
"""Decodes one record's data bytes (exactly `length` of them) into the output dict."""

RecordEncoder = Callable[[Mapping[str, Any]], list[bytes]]
"""Returns the data bodies (zero or more) this record type contributes for a decoded dict."""


def read_int(fmt: str, data: bytes, offset: int = 0) -> int:
    """Little-endian integer of format `fmt` at `offset` (the caller has checked the length)."""
    width, signed = FORMATS[fmt]
    return int.from_bytes(data[offset : offset + width], "little", signed=signed)


def pack_int(fmt: str, value: int) -> bytes:
    """Little-endian bytes for `value`, or `EncodeError` when the format cannot carry it."""
    width, signed = FORMATS[fmt]
    try:
        return int(value).to_bytes(width, "little", signed=signed)
    except OverflowError:
        msg = f"value {value} does not fit a {fmt} field"
        raise EncodeError(msg) from None


def tlv(channel: int, type_: int, body: bytes) -> bytes:
    """One record: channel id, channel type, data."""
    return bytes((channel, type_)) + body


def append(out: dict[str, Any], key: str, item: Any) -> None:
    """Append to the list `out[key]`, creating it, as the vendor codecs do for `history`/`event`."""
    out.setdefault(key, []).append(item)


@dataclass(frozen=True, slots=True)
class Field:
    """One value inside a record: `raw / scale`, or `labels[raw]` (else `other`) for enums.

    `other` is the label for unmapped values: "unknown" in the vendor decoders; the old TTN copies test
    only `raw == 0`, so they pass the "true" label here (e.g. `labels={0: "normal", 1: "tilt"},
    other="tilt"`).
    """

    key: str
    fmt: str
    scale: int = 1
    labels: Mapping[int, str] | None = None
    other: str = "unknown"

    @property
    def width(self) -> int:
        return FORMATS[self.fmt][0]

    def decode(self, raw: int) -> Any:
        if self.labels is not None:
            return self.labels.get(raw, self.other)
        return raw if self.scale == 1 else raw / self.scale

    def encode(self, value: Any) -> bytes:
        if self.labels is not None:
            raw = label_code(self.labels, value, self.key)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            msg = f"{self.key} must be a number, got {value!r}"
            raise EncodeError(msg)
        else:
            raw = round(value * self.scale)
        return pack_int(self.fmt, raw)


def label_code(labels: Mapping[int, str], value: Any, key: str) -> int:
    """The raw code for an enum label (an int is taken as the raw code itself)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    for code, label in labels.items():
        if label == value:
            return code
    msg = f"{key}={value!r} is not one of {sorted(labels.values())}"
    raise EncodeError(msg)


@dataclass(frozen=True, slots=True)
class Record:
    """A (channel id, channel type) pair with a fixed data length and its decode/encode functions."""

    channel: int
    type: int
    length: int
    name: str
    decode: RecordDecoder
    encode: RecordEncoder | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.channel, self.type)


Table = Mapping[tuple[int, int], Record]


def make_table(*records: Record | Iterable[Record]) -> dict[tuple[int, int], Record]:
    """Index records by (id, type); nested iterables (e.g. `attribute_records()`) are flattened."""
    table: dict[tuple[int, int], Record] = {}
    for item in records:
        for record in (item,) if isinstance(item, Record) else item:
            if record.key in table:
                msg = f"duplicate record {record.channel:02X} {record.type:02X}"
                raise ValueError(msg)
            table[record.key] = record
    return table


def read_fields(fields: Iterable[Field], data: bytes, out: dict[str, Any]) -> dict[str, Any]:
    """Decode consecutive `fields` from `data` into `out` (returned for chaining)."""
    offset = 0
    for f in fields:
        out[f.key] = f.decode(read_int(f.fmt, data, offset))
        offset += f.width
    return out


def write_fields(fields: Iterable[Field], values: Mapping[str, Any]) -> bytes:
    """Inverse of `read_fields`; `EncodeError` names a missing key."""
    missing = [f.key for f in fields if f.key not in values]
    if missing:
        raise EncodeError(f"missing {', '.join(missing)} in {dict(values)!r}")
    return b"".join(f.encode(values[f.key]) for f in fields)


def field_record(
    channel: int,
    type_: int,
    *fields: Field,
    name: str = "",
    when: Callable[[Mapping[str, Any]], bool] | None = None,
) -> Record:
    """A record that is just consecutive fields, each written to its own top-level key.

    It is encoded when every one of its keys is in the decoded dict (and `when(decoded)`, if given, is
    true: e.g. a periodic distance record that must not be emitted when an alarm record set `distance`).
    """

    def decode(data: bytes, out: dict[str, Any]) -> None:
        read_fields(fields, data, out)

    def encode(decoded: Mapping[str, Any]) -> list[bytes]:
        if not all(f.key in decoded for f in fields) or (when is not None and not when(decoded)):
            return []
        return [write_fields(fields, decoded)]

    return Record(
        channel,
        type_,
        sum(f.width for f in fields),
        name or "/".join(f.key for f in fields),
        decode,
        encode,
    )


def list_record(channel: int, type_: int, key: str, *fields: Field) -> Record:
    """A record appended as a dict of `fields` to the list `out[key]` (e.g. EM500 `history`)."""

    def decode(data: bytes, out: dict[str, Any]) -> None:
        append(out, key, read_fields(fields, data, {}))

    def encode(decoded: Mapping[str, Any]) -> list[bytes]:
        items = decoded.get(key, [])
        if not isinstance(items, list):
            raise EncodeError(f"{key} must be a list")
        return [write_fields(fields, item) for item in items]

    return Record(channel, type_, sum(f.width for f in fields), key, decode, encode)


def decode_tlv(payload: bytes, table: Table) -> dict[str, Any]:
    """Walk the records of `payload` with `table`, following the rules in the module docstring."""
    if not payload:
        raise DecodeError("empty payload: a Milesight uplink has at least one record")
    out: dict[str, Any] = {}
    pos = 0
    while pos < len(payload):
        record = table.get((payload[pos], payload[pos + 1])) if pos + 1 < len(payload) else None
        if record is None:
            if pos == 0:
                raise DecodeError(_unknown(payload, pos))
            break  # the codec's `break`: keep what was decoded
        start = pos + 2
        if len(payload) - start < record.length:
            msg = (
                f"truncated {record.name} record ({record.channel:02X} {record.type:02X}) at offset "
                f"{pos}: needs {record.length} data bytes, payload has {len(payload) - start} left"
            )
            raise DecodeError(msg)
        record.decode(payload[start : start + record.length], out)
        pos = start + record.length
    return out


def _unknown(payload: bytes, pos: int) -> str:
    if len(payload) - pos < 2:
        return f"truncated record header at offset {pos}: a record needs a channel id and a type byte"
    return (
        f"unknown record type: channel {payload[pos]:02X} type {payload[pos + 1]:02X} at offset {pos} "
        "is not a record this device sends"
    )


def encode_records(decoded: Mapping[str, Any], table: Table) -> bytes:
    """Concatenate, in table order, every record the table's encoders produce (possibly none)."""
    return b"".join(
        tlv(record.channel, record.type, body)
        for record in table.values()
        if record.encode is not None
        for body in record.encode(decoded)
    )


def encode_tlv(decoded: Mapping[str, Any], table: Table) -> bytes:
    """`encode_records`, but `EncodeError` when nothing in `decoded` is encodable."""
    payload = encode_records(decoded, table)
    if not payload:
        msg = f"nothing to encode: none of {sorted(_keys(table))} found in {sorted(decoded)}"
        raise EncodeError(msg)
    return payload


def _keys(table: Table) -> set[str]:
    return {r.name for r in table.values() if r.encode is not None}


# --- FF attribute records (§1.1) -------------------------------------------------------------------

LORAWAN_CLASSES: dict[int, str] = {0: "Class A", 1: "Class B", 2: "Class C", 3: "Class CtoB"}


def _version_parts(value: Any, key: str, base_major: int, base_minor: int) -> tuple[int, int]:
    """Parse "vX.Y" with X and Y in the given bases."""
    text = str(value)
    try:
        major, minor = text.removeprefix("v").split(".")
        return int(major, base_major), int(minor, base_minor)
    except ValueError:
        msg = f"{key}={value!r} is not a version like 'v1.4'"
        raise EncodeError(msg) from None


def _string_record(
    type_: int,
    key: str,
    length: int,
    read: Callable[[bytes], str],
    write: Callable[[Any], bytes],
) -> Record:
    def decode(data: bytes, out: dict[str, Any]) -> None:
        out[key] = read(data)

    def encode(decoded: Mapping[str, Any]) -> list[bytes]:
        if key not in decoded:
            return []
        body = write(decoded[key])
        if len(body) != length:
            msg = f"{key}={decoded[key]!r} encodes to {len(body)} bytes, expected {length}"
            raise EncodeError(msg)
        return [body]

    return Record(0xFF, type_, length, key, decode, encode)


def _ipso(value: Any) -> bytes:
    major, minor = _version_parts(value, "ipso_version", 10, 10)
    if not (0 <= major <= 15 and 0 <= minor <= 15):
        raise EncodeError(f"ipso_version={value!r}: each part must be 0..15")
    return bytes((major << 4 | minor,))


def _hardware(value: Any) -> bytes:
    major, minor = _version_parts(value, "hardware_version", 16, 10)
    if not (0 <= major <= 255 and 0 <= minor <= 15):
        raise EncodeError(f"hardware_version={value!r}: major must be 0..ff, minor 0..15")
    return bytes((major, minor << 4))


def _two_bytes(key: str, base: int) -> Callable[[Any], bytes]:
    def write(value: Any) -> bytes:
        major, minor = _version_parts(value, key, base, base)
        if not (0 <= major <= 255 and 0 <= minor <= 255):
            raise EncodeError(f"{key}={value!r}: each part must fit one byte")
        return bytes((major, minor))

    return write


def _hex_bytes(key: str) -> Callable[[Any], bytes]:
    def write(value: Any) -> bytes:
        try:
            return bytes.fromhex(str(value))
        except ValueError:
            raise EncodeError(f"{key}={value!r} is not a hex string") from None

    return write


def attribute_records(
    *, device_status: Mapping[int, str] | None = None, sn_type: int = 0x16, sn_length: int = 8
) -> tuple[Record, ...]:
    """The FF attribute records sent after join or reboot.

    `device_status=None` follows the EM-series/VS370 decoders (always "on"); pass `{0: "off", 1: "on"}`
    for VS373, which maps the byte and gives "unknown" otherwise (add `0xFF: "unknown"` to the map if
    you want to encode "unknown"; decoding is unchanged). WS202 passes `sn_type=0x08,
    sn_length=6`.
    """
    status_field = (
        Field("device_status", "u8", labels={1: "on"}, other="on")
        if device_status is None
        else Field("device_status", "u8", labels=device_status)
    )
    return (
        _string_record(0x01, "ipso_version", 1, lambda d: f"v{d[0] >> 4}.{d[0] & 0x0F}", _ipso),
        _string_record(0x09, "hardware_version", 2, lambda d: f"v{d[0]:x}.{d[1] >> 4}", _hardware),
        _string_record(
            0x0A, "firmware_version", 2, lambda d: f"v{d[0]:x}.{d[1]:x}", _two_bytes("firmware_version", 16)
        ),
        _string_record(0xFF, "tsl_version", 2, lambda d: f"v{d[0]}.{d[1]}", _two_bytes("tsl_version", 10)),
        _string_record(sn_type, "sn", sn_length, lambda d: d.hex(), _hex_bytes("sn")),
        field_record(0xFF, 0x0F, Field("lorawan_class", "u8", labels=LORAWAN_CLASSES)),
        field_record(0xFF, 0xFE, Field("reset_event", "u8", labels={0xFF: "reset"}, other="reset")),
        field_record(0xFF, 0x0B, status_field),
    )
