"""The reference's edge-case checklist (tts-chirpstack-formats.md §8), one test (or more) per item,
through the same `Processor` the ingester uses. Integration tests repeat the key ones end to end."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.envelope import EnvelopeError, Uplink, parse, parse_time
from ingest.pipeline import Processor, Skipped
from store.records import READING_INDEX, DeadLetter, UplinkRecord
from tests.lns import example, raw, topic_for, tts_uplink

# Later than every time the builders make (tts_uplink spaces uplinks 15 minutes per f_cnt from 2026-01-05),
# so the receive-time bound never gets in the way here (tests/unit/ingest/test_validation.py tests it).
NOW = datetime(2030, 1, 1, tzinfo=UTC)
CS_TOPIC = "application/5f0c6a1e-2b7d-4c3a-9e41-7d2b8c0f9a13/device/a84041000181c2f7/event/up"


def process(
    body: dict[str, Any] | bytes,
    topic: str | None = None,
    models: dict[str, str] | None = None,
) -> UplinkRecord | DeadLetter | Skipped:
    """Through the Processor, on the body's own topic unless one is given (bytes: a topic of no known
    shape, so nothing is compared with it)."""
    if topic is None:
        topic = "test/lns" if isinstance(body, bytes) or "uplink_message" not in body else topic_for(body)
    data = body if isinstance(body, bytes) else raw(body)
    table = models or {}
    return Processor(lambda _app, device: table.get(device)).process(topic, data, NOW)


def record(body: dict[str, Any], **kw: Any) -> UplinkRecord:
    out = process(body, **kw)
    assert isinstance(out, UplinkRecord), out
    return out


def col(rec: UplinkRecord, name: str) -> Any:
    return getattr(rec.uplink, name)


def reading(rec: UplinkRecord, name: str) -> Any:
    assert len(rec.readings) == 1
    return rec.readings[0].values[READING_INDEX[name]]


# 1. Missing means zero ------------------------------------------------------------------------------
def test_1_missing_fields_mean_zero() -> None:
    up = parse("t", example("tts_5_1_first_after_join"))
    assert isinstance(up, Uplink)
    assert up.f_cnt == 0  # omitted on the first uplink after a join
    assert up.f_port == 2
    body = example("tts_5_1_first_after_join")
    del body["uplink_message"]["rx_metadata"][0]["snr"]
    up = parse("t", body)
    assert isinstance(up, Uplink) and up.snr == 0.0


# 2. FPort 0 / MAC-only ------------------------------------------------------------------------------
def test_2_mac_only_uplink_is_stored_without_readings() -> None:
    body = tts_uplink()
    del body["uplink_message"]["f_port"], body["uplink_message"]["frm_payload"]
    rec = record(body)
    assert col(rec, "f_port") == 0 and rec.readings == [] and col(rec, "decoder") is None
    assert col(rec, "rssi_dbm") == -97  # still shows the device is alive


# 3. Empty payload on FPort > 0 ----------------------------------------------------------------------
def test_3_empty_payload_on_data_port_is_not_a_base64_error() -> None:
    body = tts_uplink()
    del body["uplink_message"]["frm_payload"]
    rec = record(body)
    assert col(rec, "f_port") == 2 and col(rec, "frm_payload") is None and rec.readings == []


# 4. No decoded_payload: our decoder, or the LNS's, or raw and flagged --------------------------------
def test_4_our_decoder_from_version_ids() -> None:
    rec = record(tts_uplink())
    assert col(rec, "decoder") == "lorawatch:dragino/ldds75"
    assert col(rec, "decoded") is None  # derivable from frm_payload + decoder: not stored twice
    assert reading(rec, "distance_mm") == 2799
    assert reading(rec, "battery_v") == pytest.approx(3.387)


def test_4_registry_model_wins_over_version_ids() -> None:
    body = tts_uplink(model="milesight-iot/em310-udl", payload=bytes.fromhex("0D3B0AEF00000001"))
    rec = record(body, models={"gully-017": "dragino/ldds75"})
    assert col(rec, "decoder") == "lorawatch:dragino/ldds75"


def test_4_falls_back_to_lns_decoded_payload_when_we_have_no_decoder() -> None:
    body = tts_uplink(model="acme/unknown-sensor")
    body["uplink_message"]["decoded_payload"] = {"level": 12.5}
    rec = record(body)
    assert col(rec, "decoder") == "lns" and json.loads(col(rec, "decoded")) == {"level": 12.5}


def test_4_no_decoder_and_no_decoded_payload_keeps_raw_payload() -> None:
    rec = record(tts_uplink(model=None))
    assert col(rec, "decoder") is None and col(rec, "frm_payload") == bytes.fromhex("0D3B0AEF00000001")


def test_4_undecodable_payload_is_dead_lettered_with_reason() -> None:
    out = process(tts_uplink(payload=b"\x01\x02\x03"))
    assert isinstance(out, DeadLetter) and out.stage == "decode"
    assert "dragino/ldds75" in out.reason and out.raw


# 5. Simulated uplinks --------------------------------------------------------------------------------
def test_5_simulated_uplink_is_kept_apart_and_never_drives_readings() -> None:
    body = example("tts_5_3_simulated")
    body["uplink_message"]["version_ids"] = {"brand_id": "dragino", "model_id": "ldds75"}
    body["uplink_message"]["frm_payload"] = base64.b64encode(bytes.fromhex("0D3B0AEF00000001")).decode()
    rec = record(body)
    assert col(rec, "simulated") is True
    assert rec.readings == [] and rec.events == []
    assert col(rec, "uplink_key") == "tts:gully-net/gully-017:as:up:01JB9F7K0M2P4R6T8V0X2Z4B6D"


# 6. Natural keys --------------------------------------------------------------------------------------
def test_6_tts_key_is_device_session_fcnt_with_or_without_correlation_ids() -> None:
    body = tts_uplink(f_cnt=7)
    live = record(body)
    del body["correlation_ids"]  # Storage Integration examples carry none
    stored = record(body)
    assert col(live, "uplink_key") == col(stored, "uplink_key") == "tts:gully-net/gully-017:AY8qfDseTWqcC35fIdOkxg==:7"


def test_6_chirpstack_key_is_deduplication_id() -> None:
    rec = record(example("chirpstack_7_4_up"), topic=CS_TOPIC)
    assert col(rec, "uplink_key") == "cs:9b1e4c2a-6d3f-4e8b-a1c7-2f5d8e0b3c94"


# 7. FCnt reset after a re-join ------------------------------------------------------------------------
def test_7_fcnt_reset_with_new_session_is_a_new_uplink() -> None:
    before = record(tts_uplink(f_cnt=500, session="AAAA"))
    after = record(tts_uplink(f_cnt=1, session="BBBB"))
    assert col(before, "uplink_key") != col(after, "uplink_key")


# 8. Integer widths -----------------------------------------------------------------------------------
def test_8_full_uint32_fcnt_and_string_frequency() -> None:
    rec = record(tts_uplink(f_cnt=4_294_967_295))
    assert col(rec, "f_cnt") == 4_294_967_295
    assert col(rec, "frequency_hz") == 867_300_000


# 9. Time source --------------------------------------------------------------------------------------
def test_9_time_is_ns_received_at_else_top_level() -> None:
    up = parse("t", example("tts_5_1_first_after_join"))
    assert isinstance(up, Uplink)
    assert up.time == datetime(2025, 11, 3, 7, 42, 18, 702266, tzinfo=UTC)  # nanoseconds trimmed
    sim = parse("t", example("tts_5_3_simulated"))
    assert isinstance(sim, Uplink) and sim.time == datetime(2025, 11, 3, 15, 20, 44, 310556, tzinfo=UTC)


def test_9_zero_time_means_missing() -> None:
    assert parse_time("0001-01-01T00:00:00Z", "x") is None
    body = example("tts_5_1_first_after_join")
    body["uplink_message"]["received_at"] = "0001-01-01T00:00:00Z"
    up = parse("t", body)
    assert isinstance(up, Uplink) and up.time == datetime(2025, 11, 3, 7, 42, 18, 913402, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2025-03-04T05:06:07Z",
        "2025-03-04T05:06:07.123Z",
        "2025-03-04T05:06:07.123456789Z",
        "2025-03-04T05:06:07.092310447+00:00",
    ],
)
def test_9_all_fraction_lengths_parse(text: str) -> None:
    t = parse_time(text, "x")
    assert t is not None and t.tzinfo is not None and t.second == 7


# 10. rx_metadata shape ---------------------------------------------------------------------------------
def test_10_antennas_merge_packet_broker_keyed_by_forwarder_and_no_uplink_token() -> None:
    body = example("tts_5_2_decoded_two_gateways_pb")
    del body["uplink_message"]["version_ids"]  # its payload is illustrative, not a real VS373 frame
    rec = record(body)
    keys = sorted(g.key for g in rec.gateways)
    assert keys == ["pb:000013:ttn:58A0CBFFFE80114D", "ward-b-gw:0016C001F11A2B3C"]
    assert col(rec, "rssi_dbm") == -71 and col(rec, "snr_db") == 9.75 and col(rec, "gateway_count") == 2
    assert "uplink_token" not in col(rec, "rx_metadata")
    assert len(json.loads(col(rec, "rx_metadata"))) == 3


def test_10_no_rx_metadata_at_all() -> None:
    body = tts_uplink()
    del body["uplink_message"]["rx_metadata"]
    rec = record(body)
    assert col(rec, "gateway_count") == 0 and col(rec, "rssi_dbm") is None


# 11. Topic vs body --------------------------------------------------------------------------------------
def test_11_device_comes_from_the_body_and_a_topic_naming_another_is_refused() -> None:
    rec = record(tts_uplink("gully-017"), topic="bridge/anything")  # a topic of no known shape
    assert col(rec, "device_id") == "gully-017" and col(rec, "application_id") == "gully-net"
    out = process(tts_uplink("gully-017"), topic="v3/gully-net@ttn/devices/someone-else/up")
    assert isinstance(out, DeadLetter) and out.stage == "envelope" and out.field == "end_device_ids.device_id"


@pytest.mark.parametrize(("name", "kind"), [("tts_5_4_join_accept", "join"), ("tts_5_4_downlink_ack", "downlink_ack")])
def test_11_dispatch_on_body_key(name: str, kind: str) -> None:
    assert process(example(name), topic="v3/app@ttn/devices/dev/whatever") == Skipped(kind)


# 12. Old and new schema ---------------------------------------------------------------------------------
def test_12_old_coding_rate_and_unknown_fields_are_accepted() -> None:
    body = tts_uplink()
    settings = body["uplink_message"]["settings"]
    settings["coding_rate"] = settings["data_rate"]["lora"].pop("coding_rate")
    settings["data_rate_index"] = 5
    body["uplink_message"]["packet_error_rate"] = 0.1
    body["uplink_message"]["normalized_payload"] = [{"water": {"level": 1}}]
    body["uplink_message"]["relay"] = {"device_id": "r1"}
    body["brand_new_field"] = {"x": 1}
    assert col(record(body), "spreading_factor") == 7


# 13. Optional identifiers ------------------------------------------------------------------------------
def test_13_abp_device_without_euis() -> None:
    body = tts_uplink()
    for key in ("dev_eui", "join_eui", "dev_addr"):
        del body["end_device_ids"][key]
    rec = record(body)
    assert rec.device.dev_eui is None and rec.device.device_id == "gully-017"


# 14. Encrypted payloads --------------------------------------------------------------------------------
def test_14_skip_payload_crypto_is_not_decoded() -> None:
    body = tts_uplink()
    body["uplink_message"]["app_s_key"] = {"key": "x"}
    rec = record(body)
    assert col(rec, "decoder") == "encrypted" and rec.readings == []


def test_14_chirpstack_join_server_context_is_not_decoded() -> None:
    body = example("chirpstack_7_4_up")
    body["joinServerContext"] = {"sessionKeyId": "x"}
    rec = record(body, topic=CS_TOPIC)
    assert col(rec, "decoder") == "encrypted"


# 16. Location side effects -----------------------------------------------------------------------------
def test_16_location_solved_is_not_a_second_reading() -> None:
    body = {
        "end_device_ids": {"device_id": "d1", "application_ids": {"application_id": "a"}},
        "received_at": "2025-11-03T07:42:18Z",
        "location_solved": {"location": {"latitude": 1}},
    }
    assert process(body) == Skipped("location_solved")


# 17. last_battery_percentage ----------------------------------------------------------------------------
def test_17_battery_comes_from_the_payload_not_the_ns() -> None:
    body = tts_uplink()
    body["uplink_message"]["last_battery_percentage"] = {"f_cnt": 1, "value": 12.0}
    rec = record(body)
    assert reading(rec, "battery_v") == pytest.approx(3.387)
    assert reading(rec, "battery_pct") is None


# 18. ChirpStack specifics ------------------------------------------------------------------------------
def test_18_chirpstack_up_event() -> None:
    rec = record(example("chirpstack_7_4_up"), topic=CS_TOPIC)
    assert col(rec, "f_cnt") == 0 and col(rec, "f_port") == 2
    assert col(rec, "rssi_dbm") == -97 and col(rec, "frequency_hz") == 867_300_000
    assert col(rec, "time") == datetime(2025, 11, 3, 7, 42, 18, 702266, tzinfo=UTC)
    assert col(rec, "decoder") == "lns"  # `object` present, no model known
    assert rec.device.device_id == "a84041000181c2f7"


def test_18_chirpstack_model_from_tags_and_other_events() -> None:
    body = example("chirpstack_7_4_up")
    body["deviceInfo"]["tags"] = {"brand_id": "dragino", "model_id": "ldds75"}
    body["data"] = base64.b64encode(bytes.fromhex("0D3B0AEF00000001")).decode()
    del body["object"]
    rec = record(body, topic=CS_TOPIC)
    assert col(rec, "decoder") == "lorawatch:dragino/ldds75"
    assert process(body, topic=CS_TOPIC.replace("/up", "/status")) == Skipped("status")


def test_18_protobuf_body_is_dead_lettered_with_advice() -> None:
    out = process(b"\x0a\x24binary-protobuf", topic="application/x/device/y/event/up")
    assert isinstance(out, DeadLetter) and out.stage == "json" and "JSON" in out.reason


# Bad input in general ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "stage", "fragment"),
    [
        (b"{not json", "json", "invalid JSON"),
        (b"[1, 2]", "json", "expected an object"),
        (b'{"hello": "world"}', "envelope", "device_id is missing"),
        (
            b'{"end_device_ids": {"device_id": "d"}, "received_at": "2025-01-01T00:00:00Z"}',
            "envelope",
            "none of the known keys",
        ),
        (
            b'{"end_device_ids": {"device_id": "d"}, "uplink_message": {"f_cnt": "x"},'
            b' "received_at": "2025-01-01T00:00:00Z"}',
            "envelope",
            "f_cnt must be an integer",
        ),
        (
            b'{"end_device_ids": {"device_id": "d"}, "uplink_message": {"frm_payload": "!!"},'
            b' "received_at": "2025-01-01T00:00:00Z"}',
            "envelope",
            "not valid base64",
        ),
        (b'{"end_device_ids": {"device_id": "d"}, "uplink_message": {}}', "envelope", "neither"),
        (b"\xff\xfe{", "json", "not JSON"),
    ],
)
def test_bad_input_is_dead_lettered_with_stage_and_reason(data: bytes, stage: str, fragment: str) -> None:
    out = process(data)
    assert isinstance(out, DeadLetter)
    assert out.stage == stage and fragment in out.reason and out.raw == data


def test_out_of_range_value_is_dead_lettered_and_the_rest_is_stored() -> None:
    # LDDS75 battery field masked to 14 bits tops out at 16.383 V: impossible for a 3.6 V cell.
    rec = record(tts_uplink(payload=bytes.fromhex("3FFF0AEF00000001")))
    assert reading(rec, "battery_v") is None and reading(rec, "distance_mm") == 2799
    [dl] = rec.dead_letters
    assert dl.stage == "range" and "battery_v" in dl.reason and dl.raw


def test_envelope_error_is_a_value_error() -> None:
    assert issubclass(EnvelopeError, ValueError)
    assert topic_for(tts_uplink()) == "v3/gully-net@ttn/devices/gully-017/up"
