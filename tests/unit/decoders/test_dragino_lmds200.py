"""Dragino LMDS200: derived edge cases from devices.md, normalisation, property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders import DecodeError
from decoders.dragino_lmds200 import CODEC
from tests.unit.decoders.level_checks import assert_round_trip, decode_or_reject, names, ports, scaled


def test_distance_alarm_with_count_3() -> None:
    decoded = CODEC.decode(2, bytes.fromhex("0b88" + "04b0" + "0000" + "0e"))
    assert decoded == {
        "Bat": 2.952,
        "dis1": 1200,
        "dis2": 0,
        "DALARM_count": 3,
        "Distance_alarm": 1,
        "Interrupt_alarm": 0,
    }
    normalized = CODEC.normalize(decoded)
    assert [(e.kind, e.attrs["DALARM_count"]) for e in normalized.events] == [("distance_alarm", 3)]


def test_single_target_has_no_second_distance() -> None:
    decoded = CODEC.decode(2, bytes.fromhex("0b8801f4000000"))
    assert decoded["dis1"] == 500 and decoded["dis2"] == 0
    assert names(CODEC.normalize(decoded)) == {
        "battery_v": 2.952,
        "distance_mm": 500.0,
        "distance_valid": 1.0,
        "interrupt": 0.0,
    }


def test_no_target_is_invalid() -> None:
    got = names(CODEC.normalize(CODEC.decode(2, bytes.fromhex("0b8800000000" + "00"))))
    assert got["distance_valid"] == 0.0 and "distance_mm" not in got


def test_status_frame() -> None:
    decoded = CODEC.decode(5, bytes.fromhex("0c0100" + "01" + "00" + "0b88"))
    assert decoded == {
        "SENSOR_MODEL": "LMDS200",
        "Ver": 100,
        "FREQUENCY_BAND": "EU868",
        "Sub_band": 0,
        "BAT": 2.952,
    }
    assert names(CODEC.normalize(decoded)) == {"battery_v": 2.952}


def test_config_frame() -> None:
    decoded = CODEC.decode(4, bytes.fromhex("000e10" + "05" + "00c8" + "07d0" + "01"))
    assert decoded == {"TDC": 3600, "ATDC": 5, "Alarm_min": 200, "Alarm_max": 2000, "Interrupt": 1}
    assert CODEC.normalize(decoded).measurements == []


@pytest.mark.parametrize(
    ("port", "payload", "reason"),
    [
        (42, "0b880100250001", "fPort"),
        (2, "0b8801", "bytes"),
        (5, "0c01a0010000", "bytes"),
        (5, "0c01a001000b88", "decimal"),
    ],
)
def test_rejections_say_why(port: int, payload: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        CODEC.decode(port, bytes.fromhex(payload))


@given(st.binary(max_size=16), ports(CODEC))
def test_arbitrary_bytes_decode_or_reject(payload: bytes, port: int) -> None:
    decode_or_reject(CODEC, port, payload)


U16 = st.integers(0, 65535)
DATA = st.fixed_dictionaries(
    {
        "Bat": scaled(16, 1000),
        "dis1": U16,
        "dis2": U16,
        "DALARM_count": st.integers(0, 63),
        "Distance_alarm": st.integers(0, 1),
        "Interrupt_alarm": st.integers(0, 1),
    }
)
CONFIG = st.fixed_dictionaries(
    {
        "TDC": st.integers(0, 2**24 - 1),
        "ATDC": st.integers(0, 255),
        "Alarm_min": U16,
        "Alarm_max": U16,
        "Interrupt": st.integers(0, 255),
    }
)
STATUS = st.fixed_dictionaries(
    {
        "SENSOR_MODEL": st.just("LMDS200"),
        "Ver": st.integers(0, 9999),
        "FREQUENCY_BAND": st.sampled_from(["EU868", "KR920"]),
        "Sub_band": st.integers(0, 255),
        "BAT": scaled(16, 1000),
    }
)


@given(DATA | CONFIG | STATUS)
def test_round_trip(decoded: dict[str, object]) -> None:
    assert_round_trip(CODEC, decoded)
