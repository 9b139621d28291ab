"""The trust boundary: every value the Processor lets through fits its column, or the message (or the one
value, stage `range`) is dead-lettered with its stage and the dotted JSON path of the field to blame.

One section per defect that used to crash the store or corrupt it silently. Pure unit tests of
`Processor`, no database."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import decoders
from ingest.envelope import Gateway
from ingest.pipeline import TIME_FLOOR, Limits, Outcome, Processor, Skipped
from store.records import (
    READING_COLUMNS,
    READING_INDEX,
    DeadLetter,
    DeviceSeen,
    EventRow,
    GatewaySeen,
    ReadingRow,
    UplinkRecord,
    UplinkRow,
)
from tests.lns import LDDS75_FRAME, T0, example, raw, rfc3339, topic_for, tts_uplink

RECEIVED = T0 + timedelta(seconds=1)  # our receive time, one second after the uplink's own time
SESSION = "AY8qfDseTWqcC35fIdOkxg=="
CS_APP = "5f0c6a1e-2b7d-4c3a-9e41-7d2b8c0f9a13"
CS_TOPIC = f"application/{CS_APP}/device/a84041000181c2f7/event/up"
EM500 = "milesight-iot/em500-udl"


def up(**kw: Any) -> dict[str, Any]:
    """A TTS uplink at T0 (tests/lns.tts_uplink, with its time pinned)."""
    kw.setdefault("time", T0)
    return tts_uplink(**kw)


def cs_up(time: datetime = T0) -> dict[str, Any]:
    body = example("chirpstack_7_4_up")
    body["time"] = time.isoformat()
    return body


def process(
    body: dict[str, Any] | bytes,
    topic: str | None = None,
    *,
    limits: Limits = Limits(),  # noqa: B008 (frozen)
    received_at: datetime = RECEIVED,
    models: dict[tuple[str, str], str] | None = None,
) -> Outcome:
    if topic is None:
        topic = topic_for(body) if isinstance(body, dict) and "uplink_message" in body else "test/lns"
    data = body if isinstance(body, bytes) else raw(body)
    table = models or {}
    return Processor(lambda app, device: table.get((app, device)), limits).process(topic, data, received_at)


def record(body: dict[str, Any] | bytes, topic: str | None = None, **kw: Any) -> UplinkRecord:
    out = process(body, topic, **kw)
    assert isinstance(out, UplinkRecord), out
    return out


def refused(body: dict[str, Any] | bytes, topic: str | None = None, **kw: Any) -> DeadLetter:
    out = process(body, topic, **kw)
    assert isinstance(out, DeadLetter), out
    return out


def assert_envelope(out: DeadLetter, field: str, *fragments: str) -> None:
    assert (out.stage, out.field) == ("envelope", field), (out.stage, out.field, out.reason)
    for fragment in fragments:
        assert fragment in out.reason, out.reason


def values(**named: Any) -> list[Any]:
    row: list[Any] = [None] * len(READING_COLUMNS)
    for name, value in named.items():
        row[READING_INDEX[name]] = value
    return row


def em500(*records: str) -> dict[str, Any]:
    return up(model=EM500, f_port=85, payload=bytes.fromhex("".join(records)))


def history(when: datetime, distance_mm: int) -> str:
    """One EM500-UDL history record (20 CE: u32 unix seconds, u16 mm, little-endian)."""
    return "20ce" + int(when.timestamp()).to_bytes(4, "little").hex() + distance_mm.to_bytes(2, "little").hex()


# 1. The new record types --------------------------------------------------------------------------------
def test_1_uplink_record_is_built_of_the_store_record_types() -> None:
    rec = record(up())
    rx = example("tts_5_1_first_after_join")["uplink_message"]["rx_metadata"]
    del rx[0]["uplink_token"]
    assert rec.uplink == UplinkRow(
        T0, f"tts:gully-net/gully-017:{SESSION}:1", "gully-net", "gully-017", "tts", False, 2, 1, LDDS75_FRAME, SESSION,
        "260B3C91", 867_300_000, 7, 125_000, -97.0, 6.5, 1, None, "lorawatch:dragino/ldds75",
        orjson.dumps(rx).decode(),
    )  # fmt: skip
    assert rec.device == DeviceSeen(
        "gully-017", "tts", T0, "gully-net", "A84041000181C2F7", "A840410000000101", "260B3C91", "dragino/ldds75"
    )
    assert rec.readings == [ReadingRow(T0, values(distance_mm=2799.0, distance_valid=True, battery_v=3.387,
                                                  interrupt=False))]  # fmt: skip
    assert rec.gateways == [
        GatewaySeen(
            "depot-roof-gw:B827EBFFFE6C1A42", "depot-roof-gw", "B827EBFFFE6C1A42", False, -97.0, 6.5, None, None
        )
    ]
    assert rec.events == [] and rec.dead_letters == [] and rec.raw == raw(up())
    assert Gateway is GatewaySeen


def test_1_events_are_event_rows() -> None:
    rec = record(em500("83e93408640002"))  # an EM500-UDL distance alarm
    canonical = json.dumps({"distance": 210.0, "distance_alarm": "mutation_alarm", "distance_mutation": 10.0})
    key = hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()
    assert rec.events == [EventRow(T0, "distance_alarm", key, canonical, rec.uplink.uplink_key)]


def test_1_application_id_is_empty_when_nothing_names_one() -> None:
    body = up()
    del body["end_device_ids"]["application_ids"]
    rec = record(body, "test/lns")
    assert rec.uplink.application_id == "" and rec.device.application_id == ""


def test_1_application_id_comes_from_the_topic_when_the_body_names_none() -> None:
    body = up()
    del body["end_device_ids"]["application_ids"]
    rec = record(body, "v3/gully-net@ttn/devices/gully-017/up")
    assert rec.uplink.application_id == "gully-net" and rec.device.application_id == "gully-net"


# 2. Processor(model_of(application_id, device_id), limits) -------------------------------------------------
def test_2_model_of_is_asked_with_application_and_device() -> None:
    asked: list[tuple[str, str]] = []

    def model_of(app: str, device: str) -> str | None:
        asked.append((app, device))
        return "dragino/ldds75" if app == "gully-net" else None

    body = up(model="milesight-iot/em310-udl")
    out = Processor(model_of).process(topic_for(body), raw(body), RECEIVED)
    assert isinstance(out, UplinkRecord) and out.uplink.decoder == "lorawatch:dragino/ldds75"
    assert asked == [("gully-net", "gully-017")]


def test_2_limits_defaults_and_time_floor() -> None:
    assert Limits() == Limits(262_144, timedelta(minutes=10), None, None)
    assert datetime(2015, 1, 1, tzinfo=UTC) == TIME_FLOOR
    with pytest.raises(dataclasses.FrozenInstanceError):
        Limits().max_message_bytes = 1  # type: ignore[misc]


# 3. Size --------------------------------------------------------------------------------------------------
def padded(size: int) -> bytes:
    body = up()
    body["padding"] = ""
    base = len(raw(body))
    body["padding"] = "x" * (size - base)
    data = raw(body)
    assert len(data) == size
    return data


def test_3_oversized_message_keeps_only_its_first_64_kib() -> None:
    data = padded(262_145)
    out = refused(data, "v3/gully-net@ttn/devices/gully-017/up")
    assert (out.stage, out.field, out.raw) == ("size", None, data[:65_536])
    assert "262145 bytes" in out.reason and "262144 bytes" in out.reason and "first 65536 bytes" in out.reason


def test_3_a_message_at_the_limit_is_processed() -> None:
    assert isinstance(process(padded(262_144), "v3/gully-net@ttn/devices/gully-017/up"), UplinkRecord)
    out = refused(padded(2_000), "test/lns", limits=Limits(max_message_bytes=1_999))
    assert out.stage == "size" and out.raw == padded(2_000)  # shorter than 64 KiB: kept whole


# 4. Integers fit their columns; floats fit `real`; bad gateway locations are dropped ----------------------
def set_path(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set a dotted path (with [i] indexes), creating objects on the way."""
    node: Any = body
    parts = path.replace("[", ".[").split(".")
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    last = parts[-1]
    if last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value
    return body


F_PORT = "uplink_message.f_port"
F_CNT = "uplink_message.f_cnt"
FREQ = "uplink_message.settings.frequency"
SF = "uplink_message.settings.data_rate.lora.spreading_factor"
BW = "uplink_message.settings.data_rate.lora.bandwidth"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (F_PORT, 256),
        (F_PORT, -1),
        (F_PORT, "2"),  # a string is not coerced
        (F_PORT, 2.0),
        (F_PORT, True),
        (F_CNT, -1),
        (F_CNT, 2**32),
        (F_CNT, 1e30),
        (F_CNT, 1.5),
        (F_CNT, True),
        (F_CNT, "12x"),
        (F_CNT, "-5"),
        (F_CNT, "\u0661\u0662"),  # Arabic-Indic digits: str.isdigit says yes, TTS never sends them
        (F_CNT, "4294967296"),
        (F_CNT, "9" * 5000),  # past Python's int() digit limit: refused, not a crash
        (FREQ, "1" * 20),
        (FREQ, 2**63),
        (FREQ, "868.1"),
        (SF, 65_543),
        (SF, "7"),
        (BW, 2**40 + 125_000),
        (BW, -125_000),
    ],
)
def test_4_integer_that_does_not_fit_its_column_is_refused(path: str, value: Any) -> None:
    out = refused(set_path(up(), path, value))
    assert_envelope(out, path, path)


@pytest.mark.parametrize(
    ("path", "value", "column", "stored"),
    [
        (F_CNT, 2**32 - 1, "f_cnt", 2**32 - 1),
        (F_CNT, "4294967295", "f_cnt", 4_294_967_295),  # uint as a string of digits, as TTS sends uint64
        (FREQ, "9223372036854775807", "frequency_hz", 2**63 - 1),
        (FREQ, 868_100_000, "frequency_hz", 868_100_000),
        (SF, 32_767, "spreading_factor", 32_767),
        (BW, 2**31 - 1, "bandwidth_hz", 2**31 - 1),
        (F_PORT, 255, "f_port", 255),
    ],
)
def test_4_integer_at_its_column_bound_is_stored_exactly(path: str, value: Any, column: str, stored: int) -> None:
    body = set_path(up(model=None), path, value)
    assert getattr(record(body).uplink, column) == stored


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("txInfo.frequency", 2**63, "txInfo.frequency"),
        ("txInfo.modulation.lora.spreadingFactor", 65_543, "txInfo.modulation.lora.spreadingFactor"),
        ("txInfo.modulation.lora.bandwidth", 2**40, "txInfo.modulation.lora.bandwidth"),
        ("fCnt", -1, "fCnt"),
        ("fPort", 300, "fPort"),
        ("rxInfo[0].rssi", 1e308, "rxInfo[0].rssi"),
        ("rxInfo[0].snr", "6.5", "rxInfo[0].snr"),
    ],
)
def test_4_chirpstack_values_are_bounded_too(path: str, value: Any, field: str) -> None:
    assert_envelope(refused(set_path(cs_up(), path, value), CS_TOPIC), field)


def test_4_more_than_1000_gateway_entries_are_refused_and_1000_are_stored() -> None:
    entry = {"gateway_ids": {"gateway_id": "g"}, "rssi": -100, "snr": 1.0}
    body = up()
    body["uplink_message"]["rx_metadata"] = [{**entry, "gateway_ids": {"gateway_id": f"g{i}"}} for i in range(1001)]
    assert_envelope(refused(body), "uplink_message.rx_metadata", "1001 entries", "1000")
    body["uplink_message"]["rx_metadata"].pop()
    assert record(body).uplink.gateway_count == 1000


@pytest.mark.parametrize(
    ("key", "value"),
    [("rssi", 1e308), ("rssi", -1e7), ("snr", 1e6 + 1), ("rssi", "-97"), ("snr", True)],
)
def test_4_signal_that_does_not_fit_real_is_refused(key: str, value: Any) -> None:
    body = up()
    body["uplink_message"]["rx_metadata"][0][key] = value
    assert_envelope(refused(body), f"uplink_message.rx_metadata[0].{key}")


def test_4_channel_rssi_is_checked_when_it_is_the_one_used() -> None:
    body = up()
    entry = body["uplink_message"]["rx_metadata"][0]
    del entry["rssi"]
    entry["channel_rssi"] = -1e300
    assert_envelope(refused(body), "uplink_message.rx_metadata[0].channel_rssi")


@pytest.mark.parametrize(
    "location",
    [
        {"latitude": 91.0, "longitude": 0.0},
        {"latitude": 0.0, "longitude": -180.5},
        {"latitude": 1e308, "longitude": 1e308},
        {"latitude": "51.5", "longitude": "-2.6"},
        {"latitude": 51.5},
        "somewhere",
    ],
)
def test_4_bad_gateway_location_is_dropped_not_refused(location: Any) -> None:
    body = up()
    body["uplink_message"]["rx_metadata"][0]["location"] = location
    [gw] = record(body).gateways
    assert (gw.latitude, gw.longitude, gw.rssi) == (None, None, -97.0)


def test_4_good_gateway_location_is_kept() -> None:
    body = up()
    body["uplink_message"]["rx_metadata"][0]["location"] = {"latitude": -90, "longitude": 180.0}
    [gw] = record(body).gateways
    assert (gw.latitude, gw.longitude) == (-90.0, 180.0)


# 5. Text: bounded identifiers, no NUL anywhere, JSON that parsers would change -----------------------------
LONG = "x" * 129


@pytest.mark.parametrize(
    "path",
    [
        "end_device_ids.device_id",
        "end_device_ids.application_ids.application_id",
        "end_device_ids.dev_eui",
        "end_device_ids.join_eui",
        "end_device_ids.dev_addr",
        "uplink_message.session_key_id",
        "uplink_message.rx_metadata[0].gateway_ids.gateway_id",
        "uplink_message.rx_metadata[0].gateway_ids.eui",
    ],
)
def test_5_identifier_over_128_characters_is_refused(path: str) -> None:
    out = refused(set_path(up(), path, LONG), "test/lns")
    assert_envelope(out, path, "129 characters", "128")


def test_5_device_id_of_5000_characters_is_refused_with_the_field_named() -> None:
    assert_envelope(refused(up(device="d" * 5000)), "end_device_ids.device_id", "5000 characters")


def test_5_identifier_of_128_characters_is_stored() -> None:
    rec = record(up(device="d" * 128))
    assert rec.uplink.device_id == rec.device.device_id == "d" * 128


def test_5_identifier_of_the_wrong_type_is_refused() -> None:
    assert_envelope(refused(set_path(up(), "end_device_ids.dev_eui", 123)), "end_device_ids.dev_eui")


def test_5_packet_broker_forwarder_ids_are_bounded() -> None:
    body = example("tts_5_2_decoded_two_gateways_pb")
    del body["uplink_message"]["version_ids"]
    body["uplink_message"]["received_at"] = rfc3339(T0)
    body["uplink_message"]["rx_metadata"][2]["packet_broker"]["forwarder_gateway_id"] = LONG
    path = "uplink_message.rx_metadata[2].packet_broker.forwarder_gateway_id"
    assert_envelope(refused(body), path)


def test_5_correlation_id_used_in_the_key_is_bounded() -> None:
    body = example("tts_5_3_simulated")
    body["received_at"] = rfc3339(T0)
    body["correlation_ids"] = ["as:up:" + "A" * 200]
    assert_envelope(refused(body), "correlation_ids[0]")


@pytest.mark.parametrize(
    "key", ["deduplicationId", "deviceInfo.devEui", "deviceInfo.applicationId", "rxInfo[0].gatewayId"]
)
def test_5_chirpstack_identifiers_are_bounded(key: str) -> None:
    assert_envelope(refused(set_path(cs_up(), key, LONG), "test/cs"), key)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("uplink_message.decoded_payload", {"foo": "a\x00b"}, "uplink_message.decoded_payload.foo"),
        ("uplink_message.rx_metadata[0].gateway_ids.gateway_id", "g\x00", None),
        ("brand_new", ["fine", "\x00"], "brand_new[1]"),  # not even a field we store
        ("end_device_ids.device_id", "gully\x00017", None),
        ("uplink_message.decoded_payload", {"k\x00": 1}, "uplink_message.decoded_payload.k\\u0000"),  # a key
    ],
)
def test_5_nul_anywhere_is_refused_with_its_path(path: str, value: Any, field: str | None) -> None:
    out = refused(set_path(up(model="acme/unknown"), path, value), "test/lns")
    assert_envelope(out, field or path, "NUL")
    assert "\x00" not in out.reason and "\x00" not in (out.field or "")


def test_5_an_escaped_backslash_before_u0000_is_text_not_nul() -> None:
    body = up(model="acme/unknown")
    body["uplink_message"]["decoded_payload"] = {"path": "C:\\u0000"}  # JSON "C:\\u0000": no NUL in it
    assert json.loads(record(body).uplink.decoded or "") == {"path": "C:\\u0000"}


def lns_decoded(text: str) -> bytes:
    """A TTS uplink with no decoder of ours whose decoded_payload is `text` (raw JSON, unparsed)."""
    body = up(model="acme/unknown")
    body["uplink_message"]["decoded_payload"] = "__HERE__"
    return raw(body).replace(b'"__HERE__"', text.encode())


TOPIC = "v3/gully-net@ttn/devices/gully-017/up"


def test_5_infinity_from_a_huge_float_literal_is_refused() -> None:
    out = refused(lns_decoded('{"level": 1e400}'), TOPIC)
    assert out.stage == "json" and "infinity" in out.reason  # orjson refuses it; it would store null


@pytest.mark.parametrize(
    ("literal", "field"),
    [
        ("123456789012345678901234567890", "uplink_message.decoded_payload.big"),
        ("18446744073709551616", "uplink_message.decoded_payload.big"),  # 2**64
        ("-9223372036854775809", "uplink_message.decoded_payload.big"),  # -2**63 - 1
        ('[1, {"x": 123456789012345678901234567890}]', "uplink_message.decoded_payload.big[1].x"),
        ("[0,\n\t -18446744073709551617]", "uplink_message.decoded_payload.big[1]"),  # whitespace, sign
        ('{"id": "a:1234567890123456789012", "n": 99999999999999999999}', "uplink_message.decoded_payload.big.n"),
    ],
)
def test_5_integer_json_parsers_would_turn_into_a_float_is_refused(literal: str, field: str) -> None:
    assert_envelope(refused(lns_decoded(f'{{"big": {literal}}}'), TOPIC), field, "64-bit")


def test_5_integer_literal_past_double_range_is_refused() -> None:
    out = refused(lns_decoded('{"big": ' + "9" * 5000 + "}"), TOPIC)
    assert out.stage == "json" and "infinity" in out.reason  # orjson: it would be an infinite float


def test_5_integers_orjson_keeps_exact_are_stored_exactly() -> None:
    rec = record(
        lns_decoded('{"u": 18446744073709551615, "i": -9223372036854775808, "id": "1234567890123456789012"}'), TOPIC
    )
    assert json.loads(rec.uplink.decoded or "") == {"u": 2**64 - 1, "i": -(2**63), "id": "1234567890123456789012"}


def test_5_huge_integer_in_f_cnt_is_named() -> None:
    data = raw(up()).replace(b'"f_cnt": 1', b'"f_cnt": 123456789012345678901234567890')
    assert_envelope(refused(data, TOPIC), F_CNT)


def test_5_lone_surrogate_is_refused() -> None:
    out = refused(lns_decoded('{"name": "\\ud800"}'), TOPIC)
    assert out.stage == "json" and "surrogate" in out.reason


def test_5_nesting_beyond_the_parser_is_refused() -> None:
    out = refused(lns_decoded("[" * 2000 + "]" * 2000), TOPIC)
    assert out.stage == "json" and "depth" in out.reason


def test_5_nesting_beyond_what_can_be_stored_is_refused() -> None:
    out = refused(lns_decoded('{"a": ' + "[" * 300 + "]" * 300 + "}"), TOPIC)
    assert_envelope(out, "uplink_message.decoded_payload", "cannot be stored")


def test_5_deep_nesting_with_a_long_digit_run_is_a_dead_letter_not_a_crash() -> None:
    data = lns_decoded('{"id": 12345678901234567890, "a": ' + "[" * 1015 + "]" * 1015 + "}")
    out = refused(data, TOPIC)
    assert out.stage == "json" and "cannot be checked" in out.reason  # Python's parser gives up


# 6. Types are never coerced; required objects must be objects ---------------------------------------------
@pytest.mark.parametrize("value", ["false", "true", 0, 1, None, []])
def test_6_simulated_must_be_a_json_boolean(value: Any) -> None:
    body = up()
    body["simulated"] = value
    assert_envelope(refused(body), "simulated", "true or false")


def test_6_simulated_absent_is_false_and_true_is_true() -> None:
    assert record(up()).uplink.simulated is False
    body = example("tts_5_3_simulated")
    body["received_at"] = rfc3339(T0)
    assert record(body).uplink.simulated is True


@pytest.mark.parametrize("value", [None, [], "up", 1])
def test_6_uplink_message_must_be_an_object(value: Any) -> None:
    body = up()
    body["uplink_message"] = value
    assert_envelope(refused(body), "uplink_message", "must be an object")


@pytest.mark.parametrize("value", [None, "gully-017", []])
def test_6_end_device_ids_must_be_an_object(value: Any) -> None:
    body = up()
    body["end_device_ids"] = value
    assert_envelope(refused(body, "test/lns"), "end_device_ids", "must be an object")


@pytest.mark.parametrize("value", [None, "x"])
def test_6_chirpstack_device_info_must_be_an_object(value: Any) -> None:
    body = cs_up()
    body["deviceInfo"] = value
    assert_envelope(refused(body, CS_TOPIC), "deviceInfo", "must be an object")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("uplink_message.settings", "868.1"),
        ("uplink_message.settings.data_rate.lora", [7]),
        ("uplink_message.rx_metadata", {"gateway_ids": {}}),
        ("uplink_message.rx_metadata[0]", "depot-roof-gw"),
        ("uplink_message.rx_metadata[0].gateway_ids", "depot-roof-gw"),
        ("uplink_message.frm_payload", 12),
    ],
)
def test_6_sub_object_of_the_wrong_type_is_refused(path: str, value: Any) -> None:
    assert_envelope(refused(set_path(up(), path, value)), path)


# 7. Times within [max(TIME_FLOOR, received - max_age), received + max_future] -----------------------------
def test_7_uplink_from_the_future_is_refused_with_the_time_and_bound() -> None:
    out = refused(up(time=RECEIVED + timedelta(minutes=10, seconds=1)))
    assert_envelope(
        out, "uplink_message.received_at", "2026-01-05T12:10:02+00:00", "later than 2026-01-05T12:10:01+00:00"
    )
    assert isinstance(process(up(time=RECEIVED + timedelta(minutes=10))), UplinkRecord)  # the bound itself


def test_7_uplink_before_the_floor_is_refused_and_the_fallback_time_is_named() -> None:
    body = up(time=datetime(2014, 12, 31, 23, 59, tzinfo=UTC))
    assert_envelope(refused(body), "uplink_message.received_at", "earlier than 2015-01-01T00:00:00+00:00")
    del body["uplink_message"]["received_at"]  # the top-level time is then the uplink's
    assert_envelope(refused(body), "received_at", "TIME_FLOOR")


def test_7_max_age_bounds_the_past() -> None:
    limits = Limits(max_age=timedelta(days=1))
    out = refused(up(time=RECEIVED - timedelta(days=1, seconds=1)), limits=limits)
    assert_envelope(out, "uplink_message.received_at", "receive time - max_age")
    assert record(up(time=RECEIVED - timedelta(days=1)), limits=limits).uplink.time == RECEIVED - timedelta(days=1)
    assert isinstance(process(up(time=datetime(2016, 1, 1, tzinfo=UTC))), UplinkRecord)  # no max_age: floor only


def test_7_zero_time_still_means_unset() -> None:
    body = up()
    body["uplink_message"]["received_at"] = "0001-01-01T00:00:00Z"
    assert record(body).uplink.time == T0 + timedelta(milliseconds=200)  # the top-level received_at


def test_7_chirpstack_time_is_bounded() -> None:
    out = refused(cs_up(time=RECEIVED + timedelta(hours=1)), CS_TOPIC)
    assert_envelope(out, "time", "later than")


def test_7_history_from_an_unset_or_future_device_clock_is_refused_and_the_rest_stored() -> None:
    past, epoch, future = T0 - timedelta(hours=1), datetime(1970, 1, 1, tzinfo=UTC), T0 + timedelta(days=1)
    rec = record(em500(history(past, 2116), history(epoch, 1000), history(future, 900)))
    assert rec.readings == [ReadingRow(past, values(distance_mm=2116.0, distance_valid=True))]
    assert [(d.stage, d.field) for d in rec.dead_letters] == [
        ("range", "distance_mm.time"),
        ("range", "distance_valid.time"),
    ]
    reason = rec.dead_letters[0].reason
    assert reason.startswith("2 values refused: distance_mm = 1000.0 at 1970-01-01T00:00:00+00:00 (device clock)")
    assert (
        "earlier than 2015-01-01" in reason and "later than" in reason and "the rest of the uplink was stored" in reason
    )


def test_7_event_from_an_unset_device_clock_is_refused_and_the_rest_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    good = decoders.Event("alarm", {"alarm_id": 1})
    bad = decoders.Event("alarm", {"alarm_id": 2}, datetime(2000, 1, 1, tzinfo=UTC))
    normalized = decoders.Normalized([decoders.Measurement("battery_v", 3.3)], [good, bad])
    monkeypatch.setattr(decoders, "normalize", lambda _device, _decoded: normalized)
    rec = record(up())
    assert [(e.time, e.attrs) for e in rec.events] == [(T0, '{"alarm_id": 1}')]
    assert rec.readings == [ReadingRow(T0, values(battery_v=3.3))]
    [dl] = rec.dead_letters
    assert (dl.stage, dl.field) == ("range", "event.alarm.time") and "2000-01-01" in dl.reason


def test_7_non_finite_values_from_a_decoder_never_reach_a_column(monkeypatch: pytest.MonkeyPatch) -> None:
    normalized = decoders.Normalized(
        [decoders.Measurement("battery_v", float("nan")), decoders.Measurement("occupied", float("inf"))],
        [decoders.Event("alarm", {"level": float("nan")})],
    )
    monkeypatch.setattr(decoders, "normalize", lambda _device, _decoded: normalized)
    rec = record(up())
    assert rec.readings == [] and rec.events == []
    assert sorted(d.field or "" for d in rec.dead_letters) == ["battery_v", "event.alarm.attrs", "occupied"]


# 8. Topic and body name the same device and application --------------------------------------------------
def test_8_tts_topic_naming_another_device_is_refused() -> None:
    out = refused(up(), "v3/gully-net@ttn/devices/gully-099/up")
    assert_envelope(out, "end_device_ids.device_id", "'gully-099'", "'gully-017'")


def test_8_tts_topic_naming_another_application_is_refused() -> None:
    out = refused(up(), "v3/other-app@ttn/devices/gully-017/up")
    assert_envelope(out, "end_device_ids.application_ids.application_id", "'other-app'", "'gully-net'")


def test_8_tts_topic_without_tenant_and_other_shapes() -> None:
    assert isinstance(process(up(), "v3/gully-net/devices/gully-017/up"), UplinkRecord)  # backfill's topic
    assert isinstance(process(up(), "test/anything/else"), UplinkRecord)  # no known shape: not compared


def test_8_chirpstack_topic_is_compared_case_insensitively_for_the_eui() -> None:
    assert isinstance(process(cs_up(), CS_TOPIC.replace("a84041000181c2f7", "A84041000181C2F7")), UplinkRecord)
    out = refused(cs_up(), CS_TOPIC.replace("a84041000181c2f7", "a84041000181c2f8"))
    assert_envelope(out, "deviceInfo.devEui", "a84041000181c2f8", "a84041000181c2f7")
    out = refused(cs_up(), CS_TOPIC.replace(CS_APP, "0e7c9a52-0000-0000-0000-000000000000"))
    assert_envelope(out, "deviceInfo.applicationId", CS_APP)


def test_8_non_uplinks_are_still_skipped() -> None:
    assert process(example("tts_5_4_join_accept"), "v3/app@ttn/devices/dev/join") == Skipped("join")


# 9. Allowed applications -----------------------------------------------------------------------------------
ONLY_GULLY = Limits(applications=frozenset({"gully-net", CS_APP}))


def test_9_foreign_application_in_the_topic_is_refused_before_parsing() -> None:
    out = refused(b"{not even json", "v3/other-app@ttn/devices/d/up", limits=ONLY_GULLY)
    assert (out.stage, out.device_id) == ("topic", "d")
    assert "'other-app'" in out.reason and "LORAWATCH_INGEST_APPLICATIONS does not list it" in out.reason


def test_9_listed_applications_pass() -> None:
    assert isinstance(process(up(), limits=ONLY_GULLY), UplinkRecord)
    assert isinstance(process(cs_up(), CS_TOPIC, limits=ONLY_GULLY), UplinkRecord)


def test_9_application_from_the_body_when_the_topic_names_none() -> None:
    out = refused(up(app="other-app"), "test/lns", limits=ONLY_GULLY)
    assert out.stage == "topic" and "'other-app'" in out.reason
    body = up()
    del body["end_device_ids"]["application_ids"]
    out = refused(body, "test/lns", limits=ONLY_GULLY)
    assert out.stage == "topic" and "no application" in out.reason
    join = example("tts_5_4_join_accept")
    assert refused(join, "test/lns", limits=ONLY_GULLY).stage == "topic"


# 10. Non-uplinks are skipped as before ----------------------------------------------------------------------
@pytest.mark.parametrize(("name", "kind"), [("tts_5_4_join_accept", "join"), ("tts_5_4_downlink_ack", "downlink_ack")])
def test_10_non_uplinks_are_skipped(name: str, kind: str) -> None:
    assert process(example(name), "test/lns") == Skipped(kind)
    assert process(cs_up(), CS_TOPIC.replace("/up", "/status")) == Skipped("status")


# Never raises, and whatever is stored fits -----------------------------------------------------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
PATHS = [
    "end_device_ids", "end_device_ids.device_id", "end_device_ids.application_ids", "end_device_ids.dev_eui",
    "received_at", "simulated", "correlation_ids", "uplink_message", "uplink_message.received_at", F_PORT, F_CNT,
    FREQ, SF, BW, "uplink_message.frm_payload", "uplink_message.session_key_id", "uplink_message.rx_metadata",
    "uplink_message.rx_metadata[0]", "uplink_message.rx_metadata[0].rssi", "uplink_message.rx_metadata[0].snr",
    "uplink_message.rx_metadata[0].location", "uplink_message.rx_metadata[0].gateway_ids",
    "uplink_message.decoded_payload", "uplink_message.version_ids", "uplink_message.settings",
]  # fmt: skip


def assert_fits(rec: UplinkRecord) -> None:
    u = rec.uplink
    assert u.f_port is None or 0 <= u.f_port <= 255
    assert u.f_cnt is None or 0 <= u.f_cnt <= 2**32 - 1
    assert u.frequency_hz is None or 0 <= u.frequency_hz <= 2**63 - 1
    assert u.spreading_factor is None or 0 <= u.spreading_factor <= 2**15 - 1
    assert u.bandwidth_hz is None or 0 <= u.bandwidth_hz <= 2**31 - 1
    assert 0 <= u.gateway_count <= 1000
    for gw in rec.gateways:
        for x in (gw.rssi, gw.snr):
            assert x is None or abs(x) <= 1e6
        assert gw.latitude is None or -90 <= gw.latitude <= 90
        assert gw.longitude is None or -180 <= gw.longitude <= 180
    texts = [u.uplink_key, u.application_id, u.device_id, u.session_key_id, u.dev_addr, u.decoded, u.rx_metadata]
    texts += [rec.device.dev_eui, rec.device.join_eui, *(g.key for g in rec.gateways)]
    for text in texts:
        assert text is None or ("\x00" not in text and "\\u0000" not in text)
    assert TIME_FLOOR <= u.time <= RECEIVED + timedelta(minutes=10)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), JSON_VALUES)
def test_any_value_at_any_field_is_stored_fitting_or_dead_lettered(path: str, value: Any) -> None:
    body = set_path(copy.deepcopy(up()), path, value)
    out = process(body, "test/lns")
    assert isinstance(out, UplinkRecord | DeadLetter | Skipped)
    if isinstance(out, DeadLetter):
        assert out.stage != "internal", out.reason
    elif isinstance(out, UplinkRecord):
        assert_fits(out)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_never_raise(data: bytes) -> None:
    out = process(data, "v3/gully-net@ttn/devices/gully-017/up")
    assert isinstance(out, DeadLetter) and out.stage != "internal"
    out = process(b"{" + data, "test/lns")
    assert isinstance(out, DeadLetter) and out.stage != "internal"


def test_a_deeply_nested_value_where_a_string_belongs_is_named_not_a_crash() -> None:
    data = raw(up()).replace(b'"device_id": "gully-017"', b'"device_id": ' + b"[" * 1000 + b"]" * 1000)
    assert_envelope(refused(data, "test/lns"), "end_device_ids.device_id", "must be a string, got an array")
