"""Property checks shared by the care-device codec tests (arbitrary bytes, round trip, ranges)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from decoders import VOCABULARY, DecodeError, Normalized
from decoders.milesight import Record, Table
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
    assert isinstance(decoded, dict)  # may be empty: a VS373 reporting 0 regions decodes to {}
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


def tlv_soup(table: Table) -> st.SearchStrategy[bytes]:
    """Payloads built from the device's own record headers with random bodies, plus a random tail.

    Plain `st.binary()` almost always fails on the first header; this reaches the record decoders,
    truncation and the stop-at-unknown rule.
    """
    records = list(table.values())

    def one(record: Record) -> st.SearchStrategy[bytes]:
        header = bytes((record.channel, record.type))
        return st.binary(min_size=record.length, max_size=record.length).map(lambda body: header + body)

    body = st.lists(st.sampled_from(records).flatmap(one), max_size=6).map(b"".join)
    return st.tuples(body, st.binary(max_size=4)).map(lambda parts: parts[0] + parts[1])


def merged(*parts: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict made from any non-empty selection of the given record strategies."""
    optional = [st.one_of(st.just({}), part) for part in parts]
    return st.tuples(*optional).map(lambda ds: {k: v for d in ds for k, v in d.items()}).filter(bool)
