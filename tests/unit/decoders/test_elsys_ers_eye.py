"""Elsys ERS Eye: public vector, derived edge cases from devices.md §3, normalisation and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders import DecodeError, Measurement, get
from decoders.elsys_ers_eye import normalize
from tests.unit.decoders.care_checks import assert_close, assert_round_trip, decode_or_reject

CODEC = get("elsys/ers-eye")


def test_public_vector() -> None:
    decoded = CODEC.decode(1, bytes.fromhex("0100e2022904002705061101"))
    assert_close(decoded, {"temperature": 22.6, "humidity": 41, "light": 39, "motion": 6, "occupancy": 1})


@pytest.mark.parametrize(
    ("hex_payload", "expected"),
    [
        # -10.0 °C (0xFF9C), vdd 3600 mV (0x0E10), occupancy 2 (occupied)
        ("01ff9c070e101102", {"temperature": -10.0, "vdd": 3600, "occupancy": 2}),
        # motion 0 and unoccupied
        ("05001100", {"motion": 0, "occupancy": 0}),
        # an Elsys debug record (0x3D) ends parsing, keeping what came before it
        ("0100e23d01020304", {"temperature": 22.6}),
    ],
)
def test_derived_edge_cases(hex_payload: str, expected: dict[str, object]) -> None:
    assert_close(CODEC.decode(5, bytes.fromhex(hex_payload)), expected)


def test_grideye_frame_plus_occupancy() -> None:
    pixels = bytes(range(0, 128, 2))  # 64 offsets: 0.0 .. 12.6 °C above the reference
    payload = bytes([0x13, 21]) + pixels + bytes([0x11, 0x02])
    assert len(payload) == 66 + 2
    decoded = CODEC.decode(5, payload)
    assert decoded["occupancy"] == 2
    assert_close(decoded["grideye"], [21 + p / 10 for p in pixels])
    assert decoded["grideye"][0] == 21.0 and decoded["grideye"][-1] == pytest.approx(33.6)


@pytest.mark.parametrize(
    ("hex_payload", "reason"),
    [
        ("", "empty payload"),
        ("3d01020304", "unknown Elsys record type 0x3D"),
        ("0600ff", "unknown Elsys record type 0x06"),  # CO2: not an ERS Eye type
        ("0100", "truncated Elsys record type 0x01"),
        ("0100e213" + "14" * 10, "truncated Elsys record type 0x13"),
    ],
)
def test_rejections(hex_payload: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        CODEC.decode(5, bytes.fromhex(hex_payload))


def test_any_port_is_accepted_like_the_reference_codec() -> None:
    assert CODEC.decode(42, bytes.fromhex("1102")) == {"occupancy": 2}


def test_normalize() -> None:
    decoded = {"temperature": 22.6, "humidity": 41, "light": 39, "motion": 6, "vdd": 3600, "occupancy": 2}
    assert normalize(decoded).measurements == [
        Measurement("temperature_c", 22.6),
        Measurement("humidity_pct", 41.0),
        Measurement("illuminance_lux", 39.0),
        Measurement("motion_count", 6.0),
        Measurement("battery_v", 3.6),
        Measurement("occupancy_state", 2.0),
        Measurement("motion", 1.0),
        Measurement("occupied", 1.0),
    ]


def test_normalize_pending_occupancy_is_not_a_presence_reading() -> None:
    names = {m.name for m in normalize({"occupancy": 1, "motion": 0}).measurements}
    assert names == {"occupancy_state", "motion_count", "motion"}


@pytest.mark.parametrize(
    "odd",
    [
        {},
        {"temperature": "hot", "humidity": None, "occupancy": True, "motion": float("nan")},
        {"temperature": 3276.7, "humidity": 255, "vdd": 65535, "occupancy": 7, "grideye": "x"},
    ],
)
def test_normalize_drops_missing_odd_and_impossible_values(odd: dict[str, object]) -> None:
    assert normalize(odd).measurements == []
    assert normalize(odd).events == []


@given(st.binary(max_size=80), st.integers(0, 255))
def test_arbitrary_bytes_decode_or_raise_decode_error(payload: bytes, f_port: int) -> None:
    decode_or_reject(CODEC, f_port, payload)


@given(st.binary(min_size=1, max_size=80).map(lambda b: b"\x13" + bytes(65) + b))
def test_arbitrary_bytes_after_a_grideye_record(payload: bytes) -> None:
    decode_or_reject(CODEC, 5, payload)


ers_frames = st.fixed_dictionaries(
    {},
    optional={
        "temperature": st.integers(-400, 850).map(lambda t: t / 10),
        "humidity": st.integers(0, 100),
        "light": st.integers(0, 65535),
        "motion": st.integers(0, 255),
        "vdd": st.integers(0, 3700),
        "occupancy": st.integers(0, 2),
        "grideye": st.tuples(st.integers(0, 60), st.lists(st.integers(0, 255), min_size=64, max_size=64)).map(
            lambda rp: [rp[0] + p / 10 for p in rp[1]]
        ),
    },
).filter(bool)


@given(ers_frames)
def test_encode_decode_round_trip(decoded: dict[str, object]) -> None:
    assert_round_trip(CODEC, decoded)
