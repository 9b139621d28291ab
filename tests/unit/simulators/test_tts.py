"""The TTS v3 builder, field by field against tts-chirpstack-formats.md (sections 2, 3 and 5)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

import decoders
from simulators import radio, tts
from simulators.model import Join, Uplink
from simulators.timefmt import parse_ns
from simulators.tts import TtsBuilder

from .conftest import Run

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$")
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
HEX_UPPER = re.compile(r"^[0-9A-F]+$")
TOPIC = re.compile(r"^v3/[a-z0-9-]+@[a-z0-9-]+/devices/[a-z0-9](?:-?[a-z0-9]){2,}/(up|join)$")
B64 = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")

#: Every key the reference documents for these objects (section 3); nothing else may appear.
TOP_KEYS = {"end_device_ids", "correlation_ids", "received_at", "uplink_message", "simulated"}
IDS_KEYS = {"device_id", "application_ids", "dev_eui", "join_eui", "dev_addr"}
UPLINK_KEYS = {
    "session_key_id", "f_port", "f_cnt", "frm_payload", "decoded_payload", "rx_metadata", "settings",
    "received_at", "confirmed", "consumed_airtime", "version_ids", "network_ids", "attributes",
}  # fmt: skip
RX_KEYS = {
    "gateway_ids", "packet_broker", "antenna_index", "time", "timestamp", "rssi", "channel_rssi", "snr",
    "location", "uplink_token", "channel_index", "received_at",
}  # fmt: skip


@pytest.fixture(scope="module")
def built(mixed: Run) -> list[tuple[Uplink | Join, str, dict[str, Any]]]:
    builder = TtsBuilder(3)
    out = []
    for record in mixed.records:
        topic, text = builder.build(record)
        out.append((record, topic, json.loads(text)))
    return out


def uplinks(
    built: list[tuple[Uplink | Join, str, dict[str, Any]]],
) -> list[tuple[Uplink, str, dict[str, Any]]]:
    return [(r, t, m) for r, t, m in built if isinstance(r, Uplink)]


def zero_paths(value: Any, path: str = "") -> list[str]:
    """Paths holding a proto3 zero value (0, "", false, [], {}), which TTS never writes. The decoded
    payload is the device's own data and may hold zeros."""
    if isinstance(value, bool):
        return [path] if value is False else []
    if isinstance(value, int | float | str):
        return [path] if value in (0, "") else []
    if isinstance(value, dict):
        inner = [p for k, v in value.items() if k != "decoded_payload" for p in zero_paths(v, f"{path}.{k}")]
        return inner if value else [path]
    if isinstance(value, list):
        inner = [p for i, v in enumerate(value) for p in zero_paths(v, f"{path}[{i}]")]
        return inner if value else [path]
    return [path]  # None


def test_zero_values_are_omitted_everywhere(built):
    for _, _, message in built:
        assert zero_paths(message) == []


def test_topics_name_app_at_tenant_and_device_id(built):
    for record, topic, message in built:
        assert TOPIC.match(topic), topic
        ids = message["end_device_ids"]
        app = f"{ids['application_ids']['application_id']}@{record.device.app.tenant_id}"
        event = "join" if isinstance(record, Join) else "up"
        assert topic == f"v3/{app}/devices/{ids['device_id']}/{event}"


def test_keys_are_the_documented_ones(built):
    for _, _, message in uplinks(built):
        assert set(message) <= TOP_KEYS
        assert set(message["end_device_ids"]) == IDS_KEYS
        assert set(message["uplink_message"]) <= UPLINK_KEYS
        for entry in message["uplink_message"]["rx_metadata"]:
            assert set(entry) <= RX_KEYS


def test_identifiers_are_uppercase_hex_and_base64(built):
    for record, _, message in uplinks(built):
        ids = message["end_device_ids"]
        for key, size in (("dev_eui", 16), ("join_eui", 16), ("dev_addr", 8)):
            assert len(ids[key]) == size and HEX_UPPER.match(ids[key])
        body = message["uplink_message"]
        assert B64.match(body["session_key_id"]) and len(base64.b64decode(body["session_key_id"])) == 16
        assert B64.match(body["frm_payload"])
        assert ids["dev_addr"] == record.session.dev_addr


def test_frm_payload_decodes_to_the_readings(built):
    for record, _, message in uplinks(built):
        body = message["uplink_message"]
        payload = base64.b64decode(body["frm_payload"], validate=True)
        assert payload == record.payload
        device = f"{body['version_ids']['brand_id']}/{body['version_ids']['model_id']}"
        assert decoders.decode(device, body["f_port"], payload) == body["decoded_payload"] == record.decoded


def test_radio_settings(built):
    for record, _, message in uplinks(built):
        settings = message["uplink_message"]["settings"]
        assert isinstance(settings["frequency"], str)
        assert int(settings["frequency"]) == radio.EU868_CHANNELS[record.channel]
        assert settings["data_rate"] == {
            "lora": {"bandwidth": 125000, "spreading_factor": record.spreading_factor, "coding_rate": "4/5"}
        }
        if "timestamp" in settings:
            assert settings["timestamp"] in [e.get("timestamp") for e in message["uplink_message"]["rx_metadata"]]
        airtime = message["uplink_message"]["consumed_airtime"]
        assert re.fullmatch(r"\d+(\.\d{3}|\.\d{6}|\.\d{9})?s", airtime)


def test_airtime_matches_the_reference_example():
    # Example 5.1: 4-byte payload at SF7/125 kHz, "consumed_airtime": "0.051456s".
    assert tts.duration(radio.airtime_ns(7, 4)) == "0.051456s"


def test_timestamps_and_their_order(built):
    """Gateway time < GS received < NS received < AS received; Packet Broker copies arrive later than
    local ones but inside the NS deduplication window."""
    for _, _, message in uplinks(built):
        body = message["uplink_message"]
        assert RFC3339_Z.match(message["received_at"]) and RFC3339_Z.match(body["received_at"])
        ns_at, as_at = parse_ns(body["received_at"]), parse_ns(message["received_at"])
        for entry in body["rx_metadata"]:
            assert RFC3339_Z.match(entry["time"]) and RFC3339_Z.match(entry["received_at"])
            gs_at = parse_ns(entry["received_at"])
            assert parse_ns(entry["time"]) < gs_at < as_at
            assert gs_at <= ns_at or entry["gateway_ids"]["gateway_id"] == "packetbroker"
        assert ns_at < as_at


def test_correlation_ids(built):
    for _, _, message in uplinks(built):
        ids = message["correlation_ids"]
        assert ids == sorted(ids)
        as_up = [i for i in ids if i.startswith("as:up:")]
        assert len(as_up) == 1 and ULID.match(as_up[0].removeprefix("as:up:"))
        assert sum(i.startswith("ns:uplink:") for i in ids) == 1
        local = {e["gateway_ids"]["gateway_id"] for e in message["uplink_message"]["rx_metadata"]} - {"packetbroker"}
        assert sum(i.startswith("gs:uplink:") for i in ids) == len(local)


def test_rx_metadata(built):
    seen_pb = seen_two_antennas = False
    for record, _, message in uplinks(built):
        entries = message["uplink_message"]["rx_metadata"]
        assert len(entries) == len(record.rx) >= 1
        for entry, rx in zip(entries, record.rx, strict=True):
            assert entry["rssi"] == entry["channel_rssi"] == rx.rssi
            assert -130 < entry["rssi"] < -40
            assert entry.get("snr", 0.0) == rx.snr and -25 < rx.snr < 15
            assert entry.get("antenna_index", 0) == rx.antenna
            assert entry.get("channel_index", 0) == record.channel or rx.gateway.packet_broker
            if entry["gateway_ids"]["gateway_id"] == "packetbroker":
                seen_pb = True
                assert "eui" not in entry["gateway_ids"] and "timestamp" not in entry
                pb = entry["packet_broker"]
                assert pb["forwarder_gateway_eui"] == rx.gateway.eui
                assert (pb["forwarder_net_id"], pb["forwarder_cluster_id"]) != (
                    pb["home_network_net_id"],
                    "eu1",
                )
            else:
                assert entry["gateway_ids"] == {"gateway_id": rx.gateway.gateway_id, "eui": rx.gateway.eui}
                assert 0 <= entry["timestamp"] < 2**32
            seen_two_antennas |= rx.antenna == 1
    assert seen_pb and seen_two_antennas


def test_version_and_network_ids(built):
    for record, _, message in uplinks(built):
        body = message["uplink_message"]
        assert body["version_ids"]["brand_id"] + "/" + body["version_ids"]["model_id"] == record.device.model
        assert body["version_ids"]["band_id"] == "EU_863_870"
        assert body["network_ids"]["tenant_id"] == record.device.app.tenant_id


def test_f_cnt_is_omitted_at_zero_and_resets_after_a_rejoin(built):
    last: dict[str, tuple[str, int]] = {}
    resets = 0
    for record, _, message in built:
        device = record.device.device_id
        if isinstance(record, Join):
            join = message["join_accept"]
            assert join["session_key_id"] == record.session.session_key_id
            assert RFC3339_Z.match(join["received_at"])
            last[device] = (join["session_key_id"], -1)
            continue
        body = message["uplink_message"]
        f_cnt = body.get("f_cnt", 0)
        assert ("f_cnt" in body) == (record.f_cnt != 0)
        session, previous = last.get(device, (body["session_key_id"], f_cnt - 1))
        if session == body["session_key_id"]:
            assert f_cnt > previous  # lost frames leave gaps, never steps back
        if previous == -1:
            assert f_cnt == 0 and "f_cnt" not in body
            resets += 1
        last[device] = (body["session_key_id"], f_cnt)
    assert resets > 0


def test_simulated_form(mixed: Run):
    builder = TtsBuilder(3, simulated=True)
    record = mixed.uplinks()[10]
    topic, text = builder.build(record)
    message = json.loads(text)
    assert topic.endswith(f"/devices/{record.device.device_id}/up")
    assert message["simulated"] is True
    assert len(message["correlation_ids"]) == 1 and message["correlation_ids"][0].startswith("as:up:")
    body = message["uplink_message"]
    assert {"session_key_id", "f_cnt", "received_at", "consumed_airtime", "network_ids"}.isdisjoint(body)
    assert body["rx_metadata"] == [{"gateway_ids": {"gateway_id": "test"}, "rssi": 42, "channel_rssi": 42, "snr": 4.2}]
    assert body["settings"] == {
        "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
        "frequency": "868000000",
    }
    assert base64.b64decode(body["frm_payload"]) == record.payload
    assert body["decoded_payload"] == record.decoded
    assert zero_paths(message) == []


def test_decoded_payload_is_optional(mixed: Run):
    record = mixed.uplinks()[0]
    _, text = TtsBuilder(3, decoded=False).build(record)
    assert "decoded_payload" not in json.loads(text)["uplink_message"]


def test_confirmed_appears_only_when_true(care_falls: Run):
    builder = TtsBuilder(1)
    confirmed = [json.loads(builder.build(r)[1]) for r in care_falls.uplinks() if r.confirmed]
    assert confirmed and all(m["uplink_message"]["confirmed"] is True for m in confirmed)
    plain = json.loads(builder.build(care_falls.uplinks()[0])[1])
    assert "confirmed" not in plain["uplink_message"]


def test_compact_json_matches_json_text() -> None:
    """orjson is used for decoded payloads only where its text equals `json`'s; the rest falls back."""
    values = [
        {"battery": 97, "distance": 1234, "temperature": 21.3, "bat": 3.612, "text": "é \u2028 \x7f"},
        {"tiny": 1e-05, "small": 1.5e-07, "big": 1e16, "none": None},
        {"nan": float("nan"), "inf": float("inf")},
        {"huge": 2**70, "neg": -0.0},
        {"nested": {"displayName": "Distance", "unit": "mm", "value": 300}, "list": [1, 2.5, "x"]},
    ]
    for value in values:
        assert tts.compact_json(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
