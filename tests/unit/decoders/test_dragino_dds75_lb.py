"""Dragino DDS75-LB: derived edge cases (no TTN vectors exist), normalisation, property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders import DecodeError
from decoders.dragino import temp_text
from decoders.dragino_dds75_lb import CODEC
from tests.unit.decoders.level_checks import assert_round_trip, decode_or_reject, names, ports, scaled

BASE = {"Node_type": "DDS75-LB", "Bat": 3.387, "Interrupt_flag": 0, "Sensor_flag": 1}
CASES = {
    "2821 mm at 26.1 C": ("0d3b0b0500010501", {**BASE, "Distance": 2821, "TempC_DS18B20": "26.10"}),
    "interrupt at -19.3 C": (
        "0d3b0b0501ff3f01",
        {**BASE, "Distance": 2821, "Interrupt_flag": 1, "TempC_DS18B20": "-19.30"},
    ),
    "no probe": ("0d3b000000000000", {**BASE, "Distance": 0, "TempC_DS18B20": "0.00", "Sensor_flag": 0}),
    "20 mm marker": ("0d3b001400000001", {**BASE, "Distance": 20, "TempC_DS18B20": "0.00"}),
}


@pytest.mark.parametrize("name", CASES)
def test_derived_case(name: str) -> None:
    payload, expected = CASES[name]
    assert CODEC.decode(2, bytes.fromhex(payload)) == expected


def test_status_frame() -> None:
    decoded = CODEC.decode(5, bytes.fromhex("270130" + "01" + "ff" + "0d3b"))
    assert decoded == {
        "SENSOR_MODEL": "DDS75-LB",
        "FIRMWARE_VERSION": "1.3.0",
        "FREQUENCY_BAND": "EU868",
        "SUB_BAND": "NULL",
        "BAT": 3.387,
    }
    assert names(CODEC.normalize(decoded)) == {"battery_v": 3.387}


def test_multi_distance_frame() -> None:
    payload = bytes.fromhex("1d3b" + "00" * 6 + "0b05" + "0c00" + "01" + "0105" + "01")
    decoded = CODEC.decode(2, payload)
    assert decoded == {
        "Bat": 3.387,
        "Additional_Distance_Data": [2821, 3072],
        "Interrupt_flag": 1,
        "TempC_DS18B20": "26.10",
        "Sensor_flag": 1,
    }
    assert names(CODEC.normalize(decoded))["distance_mm"] == 2821.0  # the closest target


def test_normalize() -> None:
    assert names(CODEC.normalize(CASES["2821 mm at 26.1 C"][1])) == {
        "battery_v": 3.387,
        "distance_mm": 2821.0,
        "distance_valid": 1.0,
        "temperature_c": 26.1,
        "interrupt": 0.0,
    }
    for name in ("no probe", "20 mm marker"):
        got = names(CODEC.normalize(CASES[name][1]))
        assert got["distance_valid"] == 0.0 and "distance_mm" not in got


@pytest.mark.parametrize(
    ("port", "payload", "reason"),
    [
        (3, "00" * 11, "datalog"),
        (6, "0001", "detect mode"),
        (9, "00", "fPort"),
        (2, "0d3b", "bytes"),
        (5, "27", "bytes"),
    ],
)
def test_rejections_say_why(port: int, payload: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        CODEC.decode(port, bytes.fromhex(payload))


@given(st.binary(max_size=56), ports(CODEC))
def test_arbitrary_bytes_decode_or_reject(payload: bytes, port: int) -> None:
    decode_or_reject(CODEC, port, payload)


FLAGS = {"Interrupt_flag": st.integers(0, 255), "Sensor_flag": st.integers(0, 255)}
TEMP = st.integers(-32768, 32767).map(temp_text)
NORMAL = st.fixed_dictionaries(
    {
        "Node_type": st.just("DDS75-LB"),
        "Bat": st.integers(0, 0x3FFF).filter(lambda mv: not mv & 0x1000).map(lambda mv: mv / 1000),
        "Distance": st.integers(0, 65535),
        "TempC_DS18B20": TEMP,
        **FLAGS,
    }
)
MULTI = st.fixed_dictionaries(
    {
        "Bat": scaled(12, 1000),
        "Additional_Distance_Data": st.lists(st.integers(0, 65535), max_size=20),
        "TempC_DS18B20": TEMP,
        **FLAGS,
    }
)
STATUS = st.fixed_dictionaries(
    {
        "SENSOR_MODEL": st.just("DDS75-LB"),
        "FIRMWARE_VERSION": st.tuples(*[st.integers(0, 15)] * 3).map(lambda v: ".".join(map(str, v))),
        "FREQUENCY_BAND": st.sampled_from(["EU868", "US915", "AS923_1", "MA869"]),
        "SUB_BAND": st.just("NULL") | st.integers(0, 254),
        "BAT": scaled(16, 1000),
    }
)


@given(NORMAL | MULTI | STATUS)
def test_round_trip(decoded: dict[str, object]) -> None:
    assert_round_trip(CODEC, decoded)
