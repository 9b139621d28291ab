"""The Elsys `[type:1][data:N]` record format (TTN `vendor/elsys/elsys.js`), big-endian data.

Only the record types an ERS Eye sends are decoded (see `decoders.elsys_ers_eye`). The generic JS
codec knows more types (03 acc, 06 co2, 08-10, 12, 14-1C); here they end parsing exactly like an
unknown type does in the JS codec (its `default:` branch), keeping what was decoded before them, so a
model that needs them adds its `ElsysType` rows rather than a new walker.

Where the JS codec would read past the end of the payload (and emit NaN or garbage), we raise
`DecodeError` instead: a truncated record is not data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from decoders.binary import Reader
from decoders.errors import DecodeError, EncodeError

ReadFn = Callable[[bytes], dict[str, Any]]
WriteFn = Callable[[Mapping[str, Any]], bytes]


@dataclass(frozen=True, slots=True)
class ElsysType:
    """One record type: its code, data length, output keys and how to read and write its data."""

    code: int
    length: int
    keys: tuple[str, ...]
    read: ReadFn
    write: WriteFn


def _finite(value: Any, key: str) -> float:
    """`value` as a float, or `EncodeError` unless it is a finite (non-bool) number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        msg = f"{key} must be a finite number, got {value!r}"
        raise EncodeError(msg)
    return float(value)


def _int_bytes(value: Any, key: str, size: int, *, signed: bool, scale: float) -> bytes:
    """`value * scale` as a `size`-byte big-endian integer, or `EncodeError` if it does not fit."""
    raw = round(_finite(value, key) * scale)
    low, high = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if signed else (0, (1 << (8 * size)) - 1)
    if not low <= raw <= high:
        msg = f"{key}={value!r} does not fit the record ({low / scale}..{high / scale})"
        raise EncodeError(msg)
    return raw.to_bytes(size, "big", signed=signed)


def scalar(code: int, key: str, size: int, *, signed: bool = False, scale: int = 1) -> ElsysType:
    """A record holding one integer; `scale` 10 means the value is sent in tenths (and decodes to float)."""

    def read(data: bytes) -> dict[str, Any]:
        raw = int.from_bytes(data, "big", signed=signed)
        return {key: raw / scale if scale != 1 else raw}

    def write(decoded: Mapping[str, Any]) -> bytes:
        return _int_bytes(decoded[key], key, size, signed=signed, scale=scale)

    return ElsysType(code, size, (key,), read, write)


GRIDEYE_PIXELS = 64


def _read_grideye(data: bytes) -> dict[str, Any]:
    ref = data[0]
    return {"grideye": [ref + p / 10.0 for p in data[1:]]}


def _write_grideye(decoded: Mapping[str, Any]) -> bytes:
    """Pick the reference byte as the floor of the coldest pixel, then send each pixel in tenths above it."""
    pixels = decoded["grideye"]
    if not isinstance(pixels, Sequence) or len(pixels) != GRIDEYE_PIXELS:
        msg = f"grideye must be a list of {GRIDEYE_PIXELS} temperatures"
        raise EncodeError(msg)
    values = [_finite(v, "grideye pixel") for v in pixels]
    ref = max(0, math.floor(min(values) + 1e-9))
    if ref > 255:
        msg = f"grideye reference {ref} °C does not fit one unsigned byte"
        raise EncodeError(msg)
    offsets = [_int_bytes(v - ref, "grideye pixel offset", 1, signed=False, scale=10) for v in values]
    return bytes([ref]) + b"".join(offsets)


GRIDEYE = ElsysType(0x13, 1 + GRIDEYE_PIXELS, ("grideye",), _read_grideye, _write_grideye)


def decode_records(payload: bytes, types: Sequence[ElsysType]) -> dict[str, Any]:
    """Walk the records; an unknown type ends parsing, or is an error when nothing was decoded yet."""
    if not payload:
        raise DecodeError("empty payload: an Elsys uplink carries at least one [type][data] record")
    table = {t.code: t for t in types}
    decoded: dict[str, Any] = {}
    reader = Reader(payload)
    while reader.remaining:
        code = payload[reader.pos]
        spec = table.get(code)
        if spec is None:
            if not decoded:
                known = ", ".join(f"0x{c:02X}" for c in sorted(table))
                msg = f"unknown Elsys record type 0x{code:02X} at offset {reader.pos} (known: {known})"
                raise DecodeError(msg)
            break
        reader.take(1)
        decoded.update(spec.read(reader.take(spec.length, what=f"Elsys record type 0x{code:02X}")))
    return decoded


def encode_records(decoded: Mapping[str, Any], types: Sequence[ElsysType]) -> bytes:
    """One record per type whose keys are all present, in table order."""
    out = bytearray()
    for spec in types:
        if all(key in decoded for key in spec.keys):
            out.append(spec.code)
            out += spec.write(decoded)
    if not out:
        wanted = ", ".join(key for spec in types for key in spec.keys)
        msg = f"nothing to encode: give at least one of {wanted}"
        raise EncodeError(msg)
    return bytes(out)
