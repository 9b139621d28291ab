"""Milesight VS370 (vendor decoder): public vector, devices.md edge cases, normalize, properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders import DecodeError, Measurement, get
from decoders.milesight_vs370 import TABLE
from tests.unit.decoders.care_checks import assert_round_trip, decode_or_reject, merged, tlv_soup

CODEC = get("milesight-iot/vs370")


@pytest.mark.parametrize(
    ("hex_payload", "expected"),
    [
        pytest.param(
            "017564030001040000", {"battery": 100, "occupancy": "occupied", "illuminance": "dim"}, id="public"
        ),
        pytest.param("030000040001", {"occupancy": "vacant", "illuminance": "bright"}, id="vacant and bright"),
        pytest.param("0400fe", {"illuminance": "disable"}, id="illuminance 0xFE: light detection disabled"),
        pytest.param("030002040002", {"occupancy": "unknown", "illuminance": "unknown"}, id="unmapped bytes"),
        pytest.param(
            "ff0bfffffe01ff0110ffff0100ff166772d4100000a1b2",
            {
                "device_status": "on",
                "reset_event": "reset",
                "ipso_version": "v1.0",
                "tsl_version": "v1.0",
                "sn": "6772d4100000a1b2",
            },
            id="attribute records (device_status always on)",
        ),
    ],
)
def test_decode(hex_payload: str, expected: dict[str, Any]) -> None:
    assert CODEC.decode(85, bytes.fromhex(hex_payload)) == expected


@pytest.mark.parametrize(
    ("hex_payload", "reason"),
    [("", "empty payload"), ("0300", "truncated occupancy"), ("ff8e00", "unknown record type")],
)
def test_rejections(hex_payload: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        CODEC.decode(85, bytes.fromhex(hex_payload))


@pytest.mark.parametrize(
    ("decoded", "expected"),
    [
        (
            {"battery": 100, "occupancy": "occupied", "illuminance": "dim"},
            [
                Measurement("battery_pct", 100.0),
                Measurement("occupied", 1.0),
                Measurement("illuminance", 0.0),
            ],
        ),
        (
            {"occupancy": "vacant", "illuminance": "bright"},
            [Measurement("occupied", 0.0), Measurement("illuminance", 1.0)],
        ),
        ({"occupancy": "unknown", "illuminance": "disable", "battery": float("inf")}, []),
    ],
)
def test_normalize(decoded: dict[str, Any], expected: list[Measurement]) -> None:
    assert CODEC.normalize(decoded).measurements == expected


vs370_frames = merged(
    st.fixed_dictionaries({"battery": st.integers(0, 100)}),
    st.fixed_dictionaries({"occupancy": st.sampled_from(["vacant", "occupied"])}),
    st.fixed_dictionaries({"illuminance": st.sampled_from(["dim", "bright", "disable"])}),
    st.fixed_dictionaries(
        {"firmware_version": st.sampled_from(["v1.14", "v2.0", "vff.ff"]), "reset_event": st.just("reset")}
    ),
)


@given(vs370_frames)
def test_encode_decode_round_trip(decoded: dict[str, Any]) -> None:
    assert_round_trip(CODEC, decoded)


@given(st.one_of(st.binary(max_size=32), tlv_soup(TABLE)), st.integers(0, 255))
def test_arbitrary_bytes_decode_or_raise_decode_error(payload: bytes, f_port: int) -> None:
    decode_or_reject(CODEC, f_port, payload)
