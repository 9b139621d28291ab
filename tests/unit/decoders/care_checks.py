"""Property checks shared by the care-device codec tests (arbitrary bytes, round trip, ranges)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from decoders import VOCABULARY, DecodeError, Normalized
from decoders.registry import Codec

#: Physical range of each normalised quantity a care device emits.
PHYSICAL: dict[str, tuple[float, float]] = {
    "battery_pct": (0, 100),
    "battery_v": (0, 5),
    "temperature_c": (-40, 85),
    "humidity_pct": (0, 100),
    "illuminance_lux": (0, 65535),
    "illuminance": (0, 1),
    "occupied": (0, 1),
    "occupancy_state": (0, 2),
    "motion": (0, 1),
    "motion_count": (0, 255),
    "respiratory_rate": (0, 120),
    "fall_detected": (0, 1),
    "lying_down": (0, 1),
    "in_bed": (0, 1),
    "distance_mm": (0, 65535),
}


def assert_in_range(normalized: Normalized) -> None:
    """Every measurement has a vocabulary name and a finite value inside its physical range."""
    for m in normalized.measurements:
        assert m.name in VOCABULARY, m.name
        low, high = PHYSICAL[m.name]
        assert math.isfinite(m.value) and low <= m.value <= high, m


def decode_or_reject(codec: Codec, f_port: int, payload: bytes) -> dict[str, Any] | None:
    """Decode arbitrary bytes: the only acceptable failure is `DecodeError` with a reason."""
    try:
        decoded = codec.decode(f_port, payload)
    except DecodeError as exc:
        assert exc.reason
        return None
    assert decoded, "a successful decode yields at least one field"
    assert_in_range(codec.normalize(decoded))
    return decoded


def assert_close(actual: Any, expected: Any, tol: float = 1e-6) -> None:
    """Deep equality with a numeric tolerance (JS and Python print floats differently)."""
    if isinstance(expected, Mapping):
        assert isinstance(actual, Mapping) and set(actual) == set(expected), (actual, expected)
        for key, value in expected.items():
            assert_close(actual[key], value, tol)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (actual, expected)
        for a, e in zip(actual, expected, strict=True):
            assert_close(a, e, tol)
    elif isinstance(expected, float) or isinstance(actual, float):
        assert abs(actual - expected) <= tol, (actual, expected)
    else:
        assert actual == expected and type(actual) is type(expected), (actual, expected)


def assert_round_trip(codec: Codec, decoded: Mapping[str, Any], tol: float = 1e-6) -> None:
    """`decode(*encode(x))` gives back `x` within the device's resolution."""
    f_port, payload = codec.encode(decoded)
    assert_close(codec.decode(f_port, payload), dict(decoded), tol)
