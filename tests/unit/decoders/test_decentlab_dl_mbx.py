"""Decentlab DL-MBX: derived edge cases from devices.md, normalisation, property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders import DecodeError
from decoders.decentlab_dl_mbx import CODEC
from tests.unit.decoders.level_checks import assert_round_trip, decode_or_reject, names, ports, scaled


def _frame(distance: int, samples: int, millivolts: int) -> bytes:
    return bytes.fromhex("02012f0003") + b"".join(v.to_bytes(2, "big") for v in (distance, samples, millivolts))


def test_5000_mm_with_10_samples_at_3600_v() -> None:
    decoded = CODEC.decode(1, _frame(5000, 10, 3600))
    assert decoded == {
        "protocol_version": 2,
        "device_id": 303,
        "distance": {"displayName": "Distance", "unit": "mm", "value": 5000},
        "number_of_valid_samples": {"displayName": "Number of valid samples", "value": 10},
        "battery_voltage": {"displayName": "Battery voltage", "unit": "V", "value": 3.6},
    }
    assert names(CODEC.normalize(decoded)) == {
        "valid_samples": 10.0,
        "battery_v": 3.6,
        "distance_mm": 5000.0,
        "distance_valid": 1.0,
    }


def test_zero_valid_samples_is_invalid() -> None:
    got = names(CODEC.normalize(CODEC.decode(1, _frame(0, 0, 3000))))
    assert got["distance_valid"] == 0.0 and "distance_mm" not in got and got["valid_samples"] == 0.0


def test_plain_numbers_normalise_too() -> None:
    assert names(CODEC.normalize({"distance": 800, "number_of_valid_samples": 3}))["distance_mm"] == 800.0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("03012f00020bb1", "protocol version 3 doesn't match v2"),
        ("02012f000304d2", "bytes"),
        ("02012f00040bb1", "flags 0x0004"),
        ("", "truncated protocol version"),
        ("0201", "truncated header"),
    ],
)
def test_rejections_say_why(payload: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        CODEC.decode(1, bytes.fromhex(payload))


@given(st.binary(max_size=16), ports(CODEC))
def test_arbitrary_bytes_decode_or_reject(payload: bytes, port: int) -> None:
    decode_or_reject(CODEC, port, payload)


@given(
    st.integers(0, 65535),
    st.one_of(st.none(), st.tuples(st.integers(0, 65535), st.integers(0, 65535))),
    st.one_of(st.none(), scaled(16, 1000)),
)
def test_round_trip(device_id: int, group0: tuple[int, int] | None, battery: float | None) -> None:
    decoded: dict[str, object] = {"protocol_version": 2, "device_id": device_id}
    if group0 is not None:
        decoded["distance"] = {"displayName": "Distance", "value": group0[0], "unit": "mm"}
        decoded["number_of_valid_samples"] = {"displayName": "Number of valid samples", "value": group0[1]}
    if battery is not None:
        decoded["battery_voltage"] = {"displayName": "Battery voltage", "value": battery, "unit": "V"}
    assert_round_trip(CODEC, decoded)
