"""Milesight EM500-UDL: derived edge cases from devices.md, normalisation, property tests."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from decoders.milesight_em500_udl import CODEC
from tests.unit.decoders.level_checks import (
    assert_round_trip,
    decode_or_reject,
    names,
    ports,
    scaled,
    tlv_dicts,
)


def test_distance_2116_mm() -> None:
    decoded = CODEC.decode(85, bytes.fromhex("01755c03824408"))
    assert decoded == {"battery": 92, "distance": 2116}
    assert names(CODEC.normalize(decoded)) == {
        "battery_pct": 92.0,
        "distance_mm": 2116.0,
        "distance_valid": 1.0,
    }


def test_distance_only() -> None:
    assert CODEC.decode(85, bytes.fromhex("03821e00")) == {"distance": 30}


def test_history_record() -> None:
    decoded = CODEC.decode(85, bytes.fromhex("20ce00e1f5654408"))
    assert decoded == {"history": [{"timestamp": 1710612736, "distance": 2116}]}
    [dist, valid] = CODEC.normalize(decoded).measurements
    assert (dist.name, dist.value, dist.time) == (
        "distance_mm",
        2116.0,
        datetime(2024, 3, 16, 18, 12, 16, tzinfo=UTC),
    )
    assert valid.name == "distance_valid" and valid.time == dist.time


def test_device_info_frame_after_join() -> None:
    decoded = CODEC.decode(85, bytes.fromhex("ff0bffff0101ff166136b17520000010ff090140ff0a0114ff0f00"))
    assert decoded == {
        "device_status": "on",
        "ipso_version": "v0.1",
        "sn": "6136b17520000010",
        "hardware_version": "v1.4",
        "firmware_version": "v1.14",
        "lorawan_class": "Class A",
    }
    assert CODEC.normalize(decoded).measurements == []


def test_alarm_record_is_an_event_with_vendor_scaling() -> None:
    decoded = CODEC.decode(85, bytes.fromhex("83e93408640002"))
    assert decoded == {"distance": 210.0, "distance_mutation": 10.0, "distance_alarm": "mutation_alarm"}
    normalized = CODEC.normalize(decoded)
    assert [e.kind for e in normalized.events] == ["distance_alarm"]
    assert "distance_mm" not in names(normalized)


def test_reset_event() -> None:
    assert [e.kind for e in CODEC.normalize(CODEC.decode(85, bytes.fromhex("fffe01"))).events] == ["device_reset"]


@given(st.binary(max_size=40), ports(CODEC))
def test_arbitrary_bytes_decode_or_reject(payload: bytes, port: int) -> None:
    decode_or_reject(CODEC, port, payload)


U16 = st.integers(0, 65535)
HISTORY = st.lists(
    st.fixed_dictionaries({"timestamp": st.integers(0, 2**32 - 1), "distance": U16}), min_size=1, max_size=3
)
PERIODIC = tlv_dicts({}, {"battery": st.integers(0, 255), "distance": U16, "history": HISTORY})
ALARM = tlv_dicts(
    {
        "distance": scaled(16, 10),
        "distance_mutation": scaled(16, 10),
        "distance_alarm": st.sampled_from(["normal", "threshold_alarm", "mutation_alarm"]),
    },
    {"battery": st.integers(0, 255), "history": HISTORY},
)


@given(PERIODIC | ALARM)
def test_round_trip(decoded: dict[str, object]) -> None:
    assert_round_trip(CODEC, decoded)
