"""Milesight EM310-UDL: derived edge cases from devices.md, normalisation, property tests."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from decoders.milesight_em310_udl import CODEC
from tests.unit.decoders.level_checks import assert_round_trip, decode_or_reject, names, ports, tlv_dicts


def test_normal_position_at_3000_mm() -> None:
    decoded = CODEC.decode(85, bytes.fromhex("0175640382b80b040000"))
    assert decoded == {"battery": 100, "distance": 3000, "tilt": "normal"}
    assert names(CODEC.normalize(decoded)) == {
        "battery_pct": 100.0,
        "tilted": 0.0,
        "distance_mm": 3000.0,
        "distance_valid": 1.0,
    }


def test_distance_only() -> None:
    assert CODEC.decode(85, bytes.fromhex("0382b80b")) == {"distance": 3000}


def test_low_battery_with_tilt() -> None:
    decoded = CODEC.decode(85, bytes.fromhex("017505040001"))
    assert decoded == {"battery": 5, "tilt": "tilt"}
    assert names(CODEC.normalize(decoded)) == {"battery_pct": 5.0, "tilted": 1.0}


def test_old_codec_reads_any_nonzero_tilt_byte_as_tilt() -> None:
    assert CODEC.decode(85, bytes.fromhex("040007")) == {"tilt": "tilt"}


def test_current_vendor_field_name_normalises_too() -> None:
    assert names(CODEC.normalize({"position": "tilt", "distance": 100})) == {
        "tilted": 1.0,
        "distance_mm": 100.0,
        "distance_valid": 1.0,
    }


@given(st.binary(max_size=40), ports(CODEC))
def test_arbitrary_bytes_decode_or_reject(payload: bytes, port: int) -> None:
    decode_or_reject(CODEC, port, payload)


@given(
    tlv_dicts(
        {},
        {
            "battery": st.integers(0, 255),
            "distance": st.integers(0, 65535),
            "tilt": st.sampled_from(["normal", "tilt"]),
        },
    )
)
def test_round_trip(decoded: dict[str, object]) -> None:
    assert_round_trip(CODEC, decoded)
