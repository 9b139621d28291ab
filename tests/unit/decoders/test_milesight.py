"""The shared Milesight TLV walker: framing rules, attribute records, encode helpers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoders import DecodeError, EncodeError
from decoders.milesight import (
    Field,
    attribute_records,
    decode_tlv,
    encode_tlv,
    field_record,
    list_record,
    make_table,
)
from tests.unit.decoders.care_checks import assert_close
from tests.unit.decoders.level_checks import ATTRIBUTES

TABLE = make_table(
    attribute_records(),
    field_record(0x01, 0x75, Field("battery", "u8")),
    field_record(0x03, 0x67, Field("temperature", "i16", scale=10)),
    field_record(0x05, 0x00, Field("position", "u8", labels={0: "normal", 1: "tilt"})),
    list_record(0x20, 0xCE, "history", Field("timestamp", "u32"), Field("distance", "u16")),
)


def test_device_info_frame_after_join() -> None:
    payload = bytes.fromhex("ff0101ff090140ff0a0114ffff0100ff166136b17520000010ff0f00fffe01ff0bff")
    assert decode_tlv(payload, TABLE) == {
        "ipso_version": "v0.1",
        "hardware_version": "v1.4",
        "firmware_version": "v1.14",
        "tsl_version": "v1.0",
        "sn": "6136b17520000010",
        "lorawan_class": "Class A",
        "reset_event": "reset",
        "device_status": "on",
    }


def test_vs373_style_device_status_maps_the_byte() -> None:
    table = make_table(attribute_records(device_status={0: "off", 1: "on"}))
    assert decode_tlv(b"\xff\x0b\xff", table) == {"device_status": "unknown"}
    assert decode_tlv(b"\xff\x0b\x00", table) == {"device_status": "off"}


def test_ws202_serial_number_record() -> None:
    table = make_table(attribute_records(sn_type=0x08, sn_length=6))
    assert decode_tlv(bytes.fromhex("ff08010203040506"), table) == {"sn": "010203040506"}


def test_unknown_pair_after_valid_records_keeps_them() -> None:
    assert decode_tlv(bytes.fromhex("017564999901020367ff00"), TABLE) == {"battery": 100}
    assert decode_tlv(bytes.fromhex("01756403"), TABLE) == {"battery": 100}


def test_history_records_append() -> None:
    payload = bytes.fromhex("20ce00e1f565340820ce10e1f565ffff")
    assert decode_tlv(payload, TABLE)["history"] == [
        {"timestamp": 1710612736, "distance": 2100},
        {"timestamp": 1710612752, "distance": 65535},
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("", "empty payload"),
        ("03", "truncated record header"),
        ("9999", "unknown record type: channel 99 type 99"),
        ("0175", "truncated battery record"),
        ("0175640367ff", "truncated temperature record"),
    ],
)
def test_rejections_say_why(payload: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_tlv(bytes.fromhex(payload), TABLE)


def test_encode_errors() -> None:
    with pytest.raises(EncodeError, match="nothing to encode"):
        encode_tlv({"other": 1}, TABLE)
    with pytest.raises(EncodeError, match="does not fit"):
        encode_tlv({"battery": 256}, TABLE)
    with pytest.raises(EncodeError, match="position"):
        encode_tlv({"position": "sideways"}, TABLE)
    with pytest.raises(ValueError, match="duplicate"):
        make_table(field_record(1, 0x75, Field("a", "u8")), field_record(1, 0x75, Field("b", "u8")))


@given(st.binary(max_size=40))
def test_arbitrary_bytes_decode_or_reject(payload: bytes) -> None:
    try:
        assert decode_tlv(payload, TABLE)
    except DecodeError as exc:
        assert exc.reason


@given(st.fixed_dictionaries({}, optional=ATTRIBUTES).filter(bool))
def test_attribute_round_trip(decoded: dict[str, str]) -> None:
    assert_close(decode_tlv(encode_tlv(decoded, TABLE), TABLE), decoded)
