"""Checks shared by the level-device codec tests: arbitrary bytes, round trips, physical ranges."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from hypothesis import strategies as st

from decoders import VOCABULARY, DecodeError, Normalized
from decoders.registry import Codec
from tests.unit.decoders.care_checks import assert_close

#: Physical range of each normalised quantity a level device emits.
PHYSICAL: dict[str, tuple[float, float]] = {
    "distance_mm": (0, 65535),
    "distance2_mm": (0, 65535),
    "distance_valid": (0, 1),
    "valid_samples": (0, 65535),
    "battery_v": (0, 5),
    "battery_pct": (0, 100),
    "temperature_c": (-55, 125),
    "tilted": (0, 1),
    "interrupt": (0, 1),
    "radar_rssi": (-327.68, 327.67),
}


def assert_in_range(normalized: Normalized) -> None:
    """Every measurement is a vocabulary name with a finite value in range; times are aware UTC."""
    for m in normalized.measurements:
        assert m.name in VOCABULARY, m.name
        low, high = PHYSICAL[m.name]
        assert math.isfinite(m.value) and low <= m.value <= high, m
        assert m.time is None or m.time.tzinfo is UTC, m
    names = [m.name for m in normalized.measurements if m.time is None]
    if "distance_mm" in names:
        assert "distance_valid" in names
    for e in normalized.events:
        assert e.kind and (e.time is None or e.time.tzinfo is UTC), e


def decode_or_reject(codec: Codec, f_port: int, payload: bytes) -> dict[str, Any] | None:
    """Arbitrary bytes either decode (to something normalisable and in range) or raise `DecodeError`."""
    try:
        decoded = codec.decode(f_port, payload)
    except DecodeError as exc:
        assert exc.reason
        return None
    assert decoded, "a successful decode yields at least one field"
    assert_in_range(codec.normalize(decoded))
    return decoded


def assert_round_trip(codec: Codec, decoded: Mapping[str, Any], tol: float = 1e-6) -> None:
    """`decode(*encode(x)) == x` within resolution, and the port is one the codec declares."""
    f_port, payload = codec.encode(decoded)
    assert f_port in codec.ports
    assert_close(codec.decode(f_port, payload), dict(decoded), tol)
    assert_in_range(codec.normalize(decoded))


def names(normalized: Normalized) -> dict[str, float]:
    """Untimed measurements as {name: value} (for concise asserts)."""
    return {m.name: m.value for m in normalized.measurements if m.time is None}


#: Any port: the device's own ones, and random ones.
def ports(codec: Codec) -> st.SearchStrategy[int]:
    return st.sampled_from(codec.ports) | st.integers(0, 255)


def scaled(bits: int, divisor: int, *, signed: bool = False) -> st.SearchStrategy[float]:
    """Values a `bits`-wide raw field divided by `divisor` can carry exactly."""
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return st.integers(low, high).map(lambda raw: raw / divisor)


def _version(major: st.SearchStrategy[int], minor: st.SearchStrategy[int], fmt: str) -> st.SearchStrategy[str]:
    return st.tuples(major, minor).map(lambda v: fmt.format(*v))


#: FF attribute records as the EM-series decoders output them.
ATTRIBUTES: dict[str, st.SearchStrategy[Any]] = {
    "ipso_version": _version(st.integers(0, 15), st.integers(0, 15), "v{}.{}"),
    "hardware_version": _version(st.integers(0, 255), st.integers(0, 15), "v{:x}.{}"),
    "firmware_version": _version(st.integers(0, 255), st.integers(0, 255), "v{:x}.{:x}"),
    "tsl_version": _version(st.integers(0, 255), st.integers(0, 255), "v{}.{}"),
    "sn": st.binary(min_size=8, max_size=8).map(bytes.hex),
    "lorawan_class": st.sampled_from(["Class A", "Class B", "Class C", "Class CtoB"]),
    "reset_event": st.just("reset"),
    "device_status": st.just("on"),
}


def tlv_dicts(required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]):
    """Decoded Milesight dicts: any non-empty subset of the optional records plus the required ones."""
    return st.fixed_dictionaries(required, optional={**ATTRIBUTES, **optional}).filter(bool)
