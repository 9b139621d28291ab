"""Decentlab DL-MBX ultrasonic distance/level sensor: protocol-v2 frame (devices.md §1.4).

Output follows TTN `vendor/decentlab/dl-mbx.js` (identical to Decentlab's own decoder): each value is
`{displayName, value, unit?}`, `unit` absent for `number_of_valid_samples`. fPort is ignored, as the
codec does (the device uses 1). The codec does not check lengths; we require exactly the words the
flag bits announce, and reject flag bits for sensor groups the DL-MBX does not have.

`normalize`: `number_of_valid_samples = 0` means no usable echo, so the distance is invalid (an
inference; the datasheet is not at hand).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders import level
from decoders.binary import Reader, expect_length
from decoders.errors import DecodeError, EncodeError
from decoders.registry import Codec, FieldDoc, register
from decoders.types import Normalized

DEVICE = "decentlab/dl-mbx"
PORT = 1
VERSION = 2
#: Sensor groups in flag-bit order: (key, display name, unit or None, divisor) for each 16-bit word.
GROUPS: tuple[tuple[tuple[str, str, str | None, int], ...], ...] = (
    (
        ("distance", "Distance", "mm", 1),
        ("number_of_valid_samples", "Number of valid samples", None, 1),
    ),
    (("battery_voltage", "Battery voltage", "V", 1000),),
)
KNOWN_FLAGS = (1 << len(GROUPS)) - 1


def decode(f_port: int, payload: bytes) -> dict[str, Any]:
    """Version byte, device id, flag word, then each present group's big-endian words."""
    del f_port
    r = Reader(payload)
    version = r.uint(1, little=False, what="protocol version byte")
    if version != VERSION:
        raise DecodeError(f"protocol version {version} doesn't match v{VERSION}")
    out: dict[str, Any] = {"protocol_version": version, "device_id": r.uint(2, little=False, what="header")}
    flags = r.uint(2, little=False, what="header")
    if flags & ~KNOWN_FLAGS:
        raise DecodeError(f"flags 0x{flags:04x} announce sensor groups a DL-MBX does not have")
    present = [group for bit, group in enumerate(GROUPS) if flags >> bit & 1]
    expect_length(payload, 5 + 2 * sum(len(g) for g in present))
    for group in present:
        for key, name, unit, divisor in group:
            raw = r.uint(2, little=False)
            value = raw if divisor == 1 else raw / divisor
            out[key] = {"displayName": name, "value": value} | ({"unit": unit} if unit else {})
    return out


def _value(decoded: Mapping[str, Any], key: str) -> Any:
    """The reading of `key`, whether it is a `{value: …}` object or a plain number."""
    item = decoded.get(key)
    return item.get("value") if isinstance(item, Mapping) else item


def encode(decoded: Mapping[str, Any]) -> tuple[int, bytes]:
    """A v2 frame with every group whose keys are all present."""
    if decoded.get("protocol_version", VERSION) != VERSION:
        raise EncodeError(f"only protocol version {VERSION} exists")
    flags, words = 0, b""
    for bit, group in enumerate(GROUPS):
        if not all(key in decoded for key, *_ in group):
            continue
        flags |= 1 << bit
        for key, _, _, divisor in group:
            value = _value(decoded, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise EncodeError(f"{key} must be a number, got {value!r}")
            raw = round(value * divisor)
            if not 0 <= raw <= 0xFFFF:
                raise EncodeError(f"{key}={value} does not fit a uint16 word")
            words += raw.to_bytes(2, "big")
    device_id = decoded.get("device_id", 0)
    if not isinstance(device_id, int) or not 0 <= device_id <= 0xFFFF:
        raise EncodeError(f"device_id={device_id!r} must be 0..65535")
    return PORT, bytes((VERSION,)) + device_id.to_bytes(2, "big") + flags.to_bytes(2, "big") + words


def normalize(decoded: Mapping[str, Any]) -> Normalized:
    """Distance (+ validity), valid sample count and battery voltage."""
    plain = {key: _value(decoded, key) for key in ("distance", "number_of_valid_samples", "battery_voltage")}
    found = level.measurements(
        plain,
        (
            level.Numeric("number_of_valid_samples", "valid_samples", 0.0, 65535.0),
            level.Numeric("battery_voltage", "battery_v", 0.0, 5.0),
        ),
    )
    if plain["distance"] is not None:
        samples = level.number(plain["number_of_valid_samples"])
        distance = None if samples == 0 else level.number(plain["distance"])
        found += level.distance(distance, 0.0, 65535.0)
    return Normalized(found)


FIELDS = (
    FieldDoc(None, "protocol_version", "always 2 (other versions are rejected)"),
    FieldDoc(None, "device_id", "Decentlab device id (uint16)"),
    FieldDoc(None, "distance", "flag bit 0: {displayName, value, unit: mm}"),
    FieldDoc(None, "number_of_valid_samples", "flag bit 0: {displayName, value}; 0 means no usable echo"),
    FieldDoc(None, "battery_voltage", "flag bit 1: {displayName, value, unit: V} (mV / 1000)"),
)

CODEC = register(
    Codec(
        device=DEVICE,
        title="Decentlab DL-MBX (ultrasonic distance/level)",
        kind="level",
        ports=(PORT,),
        reference="TTN vendor/decentlab/dl-mbx.js",
        decode=decode,
        encode=encode,
        normalize=normalize,
        fields=FIELDS,
    )
)
