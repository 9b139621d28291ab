"""Milesight VS373: public vector, devices.md §3 edge cases, alarm/history events and properties."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders import DecodeError, EncodeError, Event, Measurement, get
from decoders.milesight_vs373 import (
    ALARM_STATUS,
    ALARM_TYPE,
    DETECTION,
    REGION_ALARMS,
    REGION_TYPE,
    RESPIRATORY,
    TABLE,
    TARGET,
)
from tests.unit.decoders.care_checks import (
    assert_close,
    assert_round_trip,
    decode_or_reject,
    merged,
    tlv_soup,
)

CODEC = get("milesight-iot/vs373")
TS = 1_700_000_000  # 2023-11-14T22:13:20Z, 0x6553F100
TS_LE = "00f15365"


def decode(hex_payload: str) -> dict[str, Any]:
    return CODEC.decode(85, bytes.fromhex(hex_payload))


def test_public_vector() -> None:
    assert decode("03f801001000200004f901000100") == {
        "detection_status": "vacant",
        "target_status": "normal",
        "use_time_now": 16,
        "use_time_today": 32,
        "region_1_occupancy": "vacant",
        "region_2_occupancy": "occupied",
        "region_3_occupancy": "vacant",
        "region_4_occupancy": "occupied",
    }


@pytest.mark.parametrize(
    ("hex_payload", "expected"),
    [
        pytest.param(
            "06fb0100000100",
            {"events": [{"alarm_id": 1, "alarm_type": "fall", "alarm_status": "alarm_triggered"}]},
            id="fall alarm triggered (no region byte kept for type 0)",
        ),
        pytest.param(
            "07b004030a0000140000",
            {
                "detection_status": "fall",
                "target_status": "lying_down",
                "use_time_now": 10,
                "use_time_today": 20,
            },
            id="v1.0.2 fall + lying_down",
        ),
        pytest.param(
            "06fb0200030102",
            {
                "events": [
                    {
                        "alarm_id": 2,
                        "alarm_type": "out_of_bed",
                        "alarm_status": "alarm_triggered",
                        "region_id": 2,
                    }
                ]
            },
            id="out-of-bed alarm with its region",
        ),
        pytest.param(
            "20ce" + TS_LE + "0300000205",
            {
                "history": [
                    {
                        "timestamp": TS,
                        "alarm_id": 3,
                        "alarm_type": "fall",
                        "alarm_status": "alarm_deactivated",
                    }
                ]
            },
            id="history entry: fall alarm deactivated",
        ),
        pytest.param(
            "0ab30405000000",
            {
                "region_1_occupancy": "occupied",
                "region_2_occupancy": "vacant",
                "region_3_occupancy": "occupied",
                "region_4_occupancy": "vacant",
            },
            id="v1.0.2 region bitmask",
        ),
        pytest.param(
            "04f9000102ff",
            {
                "region_1_occupancy": "occupied",
                "region_2_occupancy": "vacant",
                "region_3_occupancy": "occupied",
                "region_4_occupancy": "occupied",
            },
            id="legacy occupancy is inverted: only raw 1 is vacant",
        ),
        pytest.param(
            "09b201020003ff07",
            {
                "region_1_type": "bed",
                "region_2_type": "door",
                "region_3_type": "custom",
                "region_4_type": "ignore",
                "region_5_type": "unset",
                "region_6_type": "unknown",
            },
            id="region types",
        ),
        pytest.param(
            "08b102b80b",
            {"respiratory_status": "normal", "respiratory_rate": 30.0},
            id="respiratory rate /100",
        ),
        pytest.param(
            "06fb040006010106fb0500090700",
            {
                "events": [
                    {
                        "alarm_id": 4,
                        "alarm_type": "bradynea",
                        "alarm_status": "alarm_triggered",
                        "region_id": 1,
                    },
                    {"alarm_id": 5, "alarm_type": "unknown", "alarm_status": "unknown"},
                ]
            },
            id="two alarms append; unmapped type/status are unknown",
        ),
        pytest.param(
            "05fa01000200030004000cb4050000060000070000",
            {f"region_{n}_out_of_bed_time": n + (n > 3) for n in range(1, 7)},
            id="out-of-bed times: legacy regions 1-4, then v1.0.2 regions 4-6 overrides region 4",
        ),
        pytest.param(
            "ff0bffff0f00ff0a0114ff166742d3f3a1b2c3d4",
            {
                "device_status": "unknown",
                "lorawan_class": "Class A",
                "firmware_version": "v1.14",
                "sn": "6742d3f3a1b2c3d4",
            },
            id="FF 0B FF is 'unknown' on VS373",
        ),
        pytest.param(
            "07b0000000000000000000fffe10",
            {"detection_status": "normal", "target_status": "normal", "use_time_now": 0, "use_time_today": 0},
            id="a configuration acknowledgement ends parsing",
        ),
    ],
)
def test_decode(hex_payload: str, expected: dict[str, Any]) -> None:
    assert_close(decode(hex_payload), expected)


@pytest.mark.parametrize(
    ("hex_payload", "reason"),
    [
        ("", "empty payload"),
        ("fffe00", "unknown record type: channel FF type FE"),  # reset record: not in the VS373 decoder
        ("0ab32100000000", "claims 33 regions"),
        ("06fb010000", "truncated alarm record"),
        ("20ce" + TS_LE + "03", "truncated history record"),
        ("03", "truncated record header"),
    ],
)
def test_rejections(hex_payload: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(hex_payload)


def test_fport_is_ignored_like_the_vendor_codec() -> None:
    assert CODEC.decode(1, bytes.fromhex("0ab30101000000")) == {"region_1_occupancy": "occupied"}


def test_normalize_status_and_breathing() -> None:
    decoded = decode("07b004030a000014000008b103c409")
    assert CODEC.normalize(decoded).measurements == [
        Measurement("fall_detected", 1.0),
        Measurement("in_bed", 0.0),
        Measurement("occupied", 1.0),
        Measurement("lying_down", 1.0),
        Measurement("respiratory_rate", 25.0),
    ]


def test_normalize_vacant_room_and_undetectable_breathing() -> None:
    normalized = CODEC.normalize(
        {"detection_status": "vacant", "respiratory_status": "undetectable", "respiratory_rate": 0}
    )
    assert ("occupied", 0.0) in [(m.name, m.value) for m in normalized.measurements]
    assert "respiratory_rate" not in {m.name for m in normalized.measurements}


def test_normalize_alarm_events() -> None:
    decoded = decode("06fb010000010006fb0200030302")
    assert CODEC.normalize(decoded).events == [
        Event("alarm", {"alarm_id": 1, "alarm_type": "fall", "alarm_status": "alarm_triggered"}),
        Event(
            "alarm",
            {"alarm_id": 2, "alarm_type": "out_of_bed", "alarm_status": "alarm_ignored", "region_id": 2},
        ),
    ]


def test_normalize_history_events_carry_their_own_time() -> None:
    decoded = decode("20ce" + TS_LE + "030000020020ce" + TS_LE[:-2] + "66" + "0400070103")
    events = CODEC.normalize(decoded).events
    assert events[0] == Event(
        "alarm",
        {"alarm_id": 3, "alarm_type": "fall", "alarm_status": "alarm_deactivated"},
        datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
    )
    assert events[1].attrs == {
        "alarm_id": 4,
        "alarm_type": "tachypnea",
        "alarm_status": "alarm_triggered",
        "region_id": 3,
    }
    assert events[1].time == datetime.fromtimestamp(0x6653F100, tz=UTC)
    assert all(e.time is not None and e.time.tzinfo is UTC for e in events)


@pytest.mark.parametrize(
    "odd",
    [
        {},
        {"events": "fall", "history": None},
        {"events": [None, 3, {"alarm_id": "x"}], "history": [{"alarm_type": "fall"}, {"timestamp": -5}]},
        {"detection_status": 4, "target_status": None, "respiratory_rate": "12", "region_1_occupancy": 1},
        {"detection_status": "unknown", "target_status": "unknown", "respiratory_rate": 900.0},
    ],
)
def test_normalize_tolerates_missing_and_odd_keys(odd: dict[str, Any]) -> None:
    normalized = CODEC.normalize(odd)
    assert normalized.measurements == []
    assert normalized.events == []


def test_normalize_keeps_well_typed_fields_of_a_partial_alarm() -> None:
    events = CODEC.normalize({"events": [{"alarm_type": "fall", "alarm_id": True, "region_id": "2"}]}).events
    assert events == [Event("alarm", {"alarm_type": "fall"})]


def test_encode_examples() -> None:
    assert CODEC.encode({"events": [{"alarm_id": 1, "alarm_type": "fall", "alarm_status": "alarm_triggered"}]}) == (
        85,
        bytes.fromhex("06fb0100000100"),
    )
    _port, payload = CODEC.encode({f"region_{n}_out_of_bed_time": n for n in range(1, 5)})
    assert payload == bytes.fromhex("05fa0100020003000400")


@pytest.mark.parametrize(
    ("decoded", "reason"),
    [
        ({}, "nothing to encode"),
        (
            {"events": [{"alarm_id": 1, "alarm_type": "out_of_bed", "alarm_status": "alarm_triggered"}]},
            "needs a region_id",
        ),
        ({"events": [{"alarm_id": 1, "alarm_type": "fall"}]}, "lacks"),
        (
            {"history": [{"alarm_id": 1, "alarm_type": "fall", "alarm_status": "alarm_triggered"}]},
            "timestamp",
        ),
        ({"region_2_occupancy": "occupied"}, "without gaps"),
        ({"region_1_out_of_bed_time": 5}, "groups"),
        (
            {
                "detection_status": "sitting",
                "target_status": "normal",
                "use_time_now": 0,
                "use_time_today": 0,
            },
            "sitting",
        ),
    ],
)
def test_encode_rejects_what_the_frame_cannot_carry(decoded: dict[str, Any], reason: str) -> None:
    with pytest.raises(EncodeError, match=reason):
        CODEC.encode(decoded)


# --- properties ------------------------------------------------------------------------------------


def labels(table: dict[int, str]) -> st.SearchStrategy[str]:
    return st.sampled_from(list(table.values()))


def alarm() -> st.SearchStrategy[dict[str, Any]]:
    base: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
        {
            "alarm_id": st.integers(0, 0xFFFF),
            "alarm_type": labels(ALARM_TYPE),
            "alarm_status": labels(ALARM_STATUS),
        }
    )
    region = st.integers(0, 255)
    codes = {v: k for k, v in ALARM_TYPE.items()}
    return st.tuples(base, region).map(
        lambda br: {**br[0], "region_id": br[1]} if codes[br[0]["alarm_type"]] in REGION_ALARMS else br[0]
    )


def per_region(suffix: str, first: int, last: int, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({f"region_{n}_{suffix}": values for n in range(first, last + 1)})


u24 = st.integers(0, 0xFFFFFF)
vs373_frames = merged(
    st.fixed_dictionaries(
        {
            "detection_status": labels(DETECTION),
            "target_status": labels(TARGET),
            "use_time_now": u24,
            "use_time_today": u24,
        }
    ),
    st.integers(1, 32).flatmap(lambda n: per_region("occupancy", 1, n, st.sampled_from(["occupied", "vacant"]))),
    per_region("type", 1, 6, labels(REGION_TYPE)),
    st.one_of(
        per_region("out_of_bed_time", 1, 4, st.integers(0, 0xFFFF)),
        per_region("out_of_bed_time", 1, 3, u24),
        per_region("out_of_bed_time", 4, 6, u24),
        per_region("out_of_bed_time", 1, 6, u24),
    ),
    st.fixed_dictionaries(
        {
            "respiratory_status": labels(RESPIRATORY),
            "respiratory_rate": st.integers(0, 0xFFFF).map(lambda r: r / 100),
        }
    ),
    st.fixed_dictionaries({"events": st.lists(alarm(), min_size=1, max_size=3)}),
    st.fixed_dictionaries(
        {
            "history": st.lists(
                st.tuples(st.integers(0, 2**32 - 1), alarm()).map(lambda ta: {"timestamp": ta[0], **ta[1]}),
                min_size=1,
                max_size=3,
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "device_status": st.sampled_from(["off", "on", "unknown"]),
            "lorawan_class": st.sampled_from(["Class A", "Class B", "Class C", "Class CtoB"]),
            "sn": st.binary(min_size=8, max_size=8).map(bytes.hex),
            "tsl_version": st.tuples(st.integers(0, 255), st.integers(0, 255)).map(lambda v: f"v{v[0]}.{v[1]}"),
        }
    ),
)


@given(vs373_frames)
def test_encode_decode_round_trip(decoded: dict[str, Any]) -> None:
    assert_round_trip(CODEC, decoded)


@given(st.binary(max_size=64), st.integers(0, 255))
def test_arbitrary_bytes_decode_or_raise_decode_error(payload: bytes, f_port: int) -> None:
    decode_or_reject(CODEC, f_port, payload)


@given(tlv_soup(TABLE))
def test_record_soup_decodes_or_raises_decode_error(payload: bytes) -> None:
    decoded = decode_or_reject(CODEC, 85, payload)
    if decoded is None:
        return
    for event in CODEC.normalize(decoded).events:
        assert event.kind == "alarm" and set(event.attrs) <= {
            "alarm_id",
            "alarm_type",
            "alarm_status",
            "region_id",
        }
        assert 0 <= event.attrs["alarm_id"] <= 0xFFFF
    for item in decoded.get("history", []):
        assert 0 <= item["timestamp"] < 2**32
    assert 0 <= decoded.get("respiratory_rate", 0) <= 655.35
