"""Dragino LDDS75: derived edge cases from devices.md, normalisation, and property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders import DecodeError
from decoders.dragino import temp_text
from decoders.dragino_ldds75 import CODEC
from tests.unit.decoders.level_checks import assert_round_trip, decode_or_reject, names, ports, scaled

CASES = {
    "no probe": (
        "0d3b0000000000" + "00",
        {
            "Bat": 3.387,
            "Distance": "No Sensor",
            "Interrupt_flag": 0,
            "TempC_DS18B20": "0.00",
            "Sensor_flag": 0,
        },
    ),
    "invalid reading marker": (
        "0d3b0014000105" + "01",
        {
            "Bat": 3.387,
            "Distance": "Invalid Reading",
            "Interrupt_flag": 0,
            "TempC_DS18B20": "26.10",
            "Sensor_flag": 1,
        },
    ),
    "interrupt at -19.3 C": (
        "0d3b0aef01ff3f" + "01",
        {
            "Bat": 3.387,
            "Distance": "2799 mm",
            "Interrupt_flag": 1,
            "TempC_DS18B20": "-19.30",
            "Sensor_flag": 1,
        },
    ),
    "battery top bits masked, 7500 mm": (
        "cd3b1d4c000000" + "01",
        {"Bat": 3.387, "Distance": "7500 mm", "Interrupt_flag": 0, "TempC_DS18B20": "0.00", "Sensor_flag": 1},
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_derived_case(name: str) -> None:
    payload, expected = CASES[name]
    assert CODEC.decode(2, bytes.fromhex(payload)) == expected


def test_normalize_valid_reading() -> None:
    got = names(CODEC.normalize(CASES["interrupt at -19.3 C"][1]))
    assert got == {
        "battery_v": 3.387,
        "distance_mm": 2799.0,
        "distance_valid": 1.0,
        "temperature_c": -19.3,
        "interrupt": 1.0,
    }


@pytest.mark.parametrize("name", ["no probe", "invalid reading marker"])
def test_normalize_markers_are_invalid(name: str) -> None:
    got = names(CODEC.normalize(CASES[name][1]))
    assert got["distance_valid"] == 0.0 and "distance_mm" not in got


def test_no_probe_temperature_is_not_zero_degrees() -> None:
    assert "temperature_c" not in names(CODEC.normalize(CASES["no probe"][1]))


def test_vendor_variant_and_partial_dicts_normalise() -> None:
    assert names(CODEC.normalize({"Distance": 1500, "Sensor_flag": 1}))["distance_mm"] == 1500.0
    assert names(CODEC.normalize({})) == {"distance_valid": 0.0}
    assert names(CODEC.normalize({"Distance": "9000 mm"})) == {"distance_valid": 0.0}


@pytest.mark.parametrize(
    ("port", "payload", "reason"), [(42, "0d3b0aef00000001", "fPort"), (2, "0d3b0aef0000", "bytes")]
)
def test_rejections_say_why(port: int, payload: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        CODEC.decode(port, bytes.fromhex(payload))


@given(st.binary(max_size=24), ports(CODEC))
def test_arbitrary_bytes_decode_or_reject(payload: bytes, port: int) -> None:
    decode_or_reject(CODEC, port, payload)


DISTANCES = st.sampled_from(["No Sensor", "Invalid Reading"]) | st.integers(0, 65535).filter(
    lambda n: n not in (0, 20)
).map(lambda n: f"{n} mm")


@given(
    st.fixed_dictionaries(
        {
            "Bat": scaled(14, 1000),
            "Distance": DISTANCES,
            "Interrupt_flag": st.integers(0, 255),
            "TempC_DS18B20": st.integers(-32768, 32767).map(temp_text),
            "Sensor_flag": st.integers(0, 255),
        }
    )
)
def test_round_trip(decoded: dict[str, object]) -> None:
    assert_round_trip(CODEC, decoded)
