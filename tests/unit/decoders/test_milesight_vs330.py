"""Milesight VS330 (TTN `vs330.js` names): public vector, devices.md edge cases, normalize, properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders import DecodeError, Measurement, get
from decoders.milesight_vs330 import TABLE
from tests.unit.decoders.care_checks import assert_round_trip, decode_or_reject, merged, tlv_soup

CODEC = get("milesight-iot/vs330")


@pytest.mark.parametrize(
    ("hex_payload", "expected"),
    [
        pytest.param(
            "01756202820f00038e01048e01",
            {"battery": 98, "distance": 15, "occupancy": "occupied", "calibration": "success"},
            id="public vector",
        ),
        pytest.param("0282d007038e00", {"distance": 2000, "occupancy": "vacant"}, id="vacant at 2000 mm"),
        pytest.param("048e00", {"calibration": "failed"}, id="calibration failed"),
        pytest.param("038e02048e09", {"occupancy": "occupied", "calibration": "success"}, id="any non-zero byte"),
        pytest.param(
            "ff0b01ff0f00ff0901400282e803",
            {"device_status": "on", "lorawan_class": "Class A", "hardware_version": "v1.4", "distance": 1000},
            id="device-info frame after join",
        ),
    ],
)
def test_decode(hex_payload: str, expected: dict[str, Any]) -> None:
    assert CODEC.decode(85, bytes.fromhex(hex_payload)) == expected


@pytest.mark.parametrize(
    ("hex_payload", "reason"),
    [("", "empty payload"), ("0282d0", "truncated distance"), ("038f00", "unknown record type")],
)
def test_rejections(hex_payload: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        CODEC.decode(85, bytes.fromhex(hex_payload))


@pytest.mark.parametrize(
    ("decoded", "expected"),
    [
        (
            {"battery": 98, "distance": 15, "occupancy": "occupied", "calibration": "success"},
            [
                Measurement("battery_pct", 98.0),
                Measurement("distance_mm", 15.0),
                Measurement("occupied", 1.0),
            ],
        ),
        (
            {"distance": 2000, "occupancy": "vacant"},
            [Measurement("distance_mm", 2000.0), Measurement("occupied", 0.0)],
        ),
        ({"distance": -1, "occupancy": True, "battery": "98"}, []),
    ],
)
def test_normalize(decoded: dict[str, Any], expected: list[Measurement]) -> None:
    assert CODEC.normalize(decoded).measurements == expected


vs330_frames = merged(
    st.fixed_dictionaries({"battery": st.integers(0, 100)}),
    st.fixed_dictionaries({"distance": st.integers(0, 0xFFFF)}),
    st.fixed_dictionaries({"occupancy": st.sampled_from(["vacant", "occupied"])}),
    st.fixed_dictionaries({"calibration": st.sampled_from(["failed", "success"])}),
)


@given(vs330_frames)
def test_encode_decode_round_trip(decoded: dict[str, Any]) -> None:
    assert_round_trip(CODEC, decoded)


@given(st.one_of(st.binary(max_size=32), tlv_soup(TABLE)), st.integers(0, 255))
def test_arbitrary_bytes_decode_or_raise_decode_error(payload: bytes, f_port: int) -> None:
    decode_or_reject(CODEC, f_port, payload)
