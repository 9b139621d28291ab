"""Milesight WS202 (TTN `ws202.js` names): README payload, PIR/light edge cases, normalize, properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders import DecodeError, Measurement, get
from decoders.milesight_ws202 import TABLE
from tests.unit.decoders.care_checks import assert_round_trip, decode_or_reject, merged, tlv_soup

CODEC = get("milesight-iot/ws202")


@pytest.mark.parametrize(
    ("hex_payload", "expected"),
    [
        pytest.param("030001", {"pir": "trigger"}, id="public vector: PIR trigger"),
        pytest.param("040000", {"light": "dark"}, id="public vector: dark"),
        pytest.param("017510030001040000", {"battery": 16, "pir": "trigger", "light": "dark"}, id="README payload"),
        pytest.param("030000040001", {"pir": "normal", "light": "light"}, id="PIR normal with light"),
        pytest.param("030007040002", {"pir": "trigger", "light": "light"}, id="old codec: any non-zero byte"),
        pytest.param(
            "ff0bffff086136c1234567017564",
            {"device_status": "on", "sn": "6136c1234567", "battery": 100},
            id="device-info frame: FF 08 six-byte serial number",
        ),
        pytest.param("017564ff160102030405060708", {"battery": 100}, id="FF 16 is not a WS202 record"),
    ],
)
def test_decode(hex_payload: str, expected: dict[str, Any]) -> None:
    assert CODEC.decode(85, bytes.fromhex(hex_payload)) == expected


@pytest.mark.parametrize(
    ("hex_payload", "reason"),
    [
        ("", "empty payload"),
        ("0175", "truncated battery"),
        ("057500", "unknown record type"),
        ("01", "header"),
    ],
)
def test_rejections(hex_payload: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        CODEC.decode(85, bytes.fromhex(hex_payload))


@pytest.mark.parametrize(
    ("decoded", "expected"),
    [
        (
            {"battery": 16, "pir": "trigger", "light": "dark"},
            [Measurement("battery_pct", 16.0), Measurement("motion", 1.0), Measurement("illuminance", 0.0)],
        ),
        (
            {"pir": "normal", "daylight": "bright"},
            [Measurement("motion", 0.0), Measurement("illuminance", 1.0)],
        ),
        ({"battery": 255, "pir": 1, "light": "unknown", "sn": None}, []),
        ({}, []),
    ],
)
def test_normalize(decoded: dict[str, Any], expected: list[Measurement]) -> None:
    assert CODEC.normalize(decoded).measurements == expected


ws202_frames = merged(
    st.fixed_dictionaries({"battery": st.integers(0, 100)}),
    st.fixed_dictionaries({"pir": st.sampled_from(["normal", "trigger"])}),
    st.fixed_dictionaries({"light": st.sampled_from(["dark", "light"])}),
    st.fixed_dictionaries({"sn": st.binary(min_size=6, max_size=6).map(bytes.hex), "device_status": st.just("on")}),
)


@given(ws202_frames)
def test_encode_decode_round_trip(decoded: dict[str, Any]) -> None:
    assert_round_trip(CODEC, decoded)


@given(st.one_of(st.binary(max_size=32), tlv_soup(TABLE)), st.integers(0, 255))
def test_arbitrary_bytes_decode_or_raise_decode_error(payload: bytes, f_port: int) -> None:
    decode_or_reject(CODEC, f_port, payload)
