"""The ChirpStack v4 builder against the reference (section 7): keys, types, zero handling, topics."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

import decoders
from simulators import radio
from simulators.chirpstack import ChirpStackBuilder
from simulators.model import Join, Uplink

from .conftest import Run

TOPIC = re.compile(r"^application/[0-9a-f-]{36}/device/[0-9a-f]{16}/event/(up|join)$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?\+00:00$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TOP = ["deduplicationId", "time", "deviceInfo", "devAddr", "adr", "dr", "fCnt", "fPort", "confirmed", "data"]
DEVICE_INFO = {
    "tenantId", "tenantName", "applicationId", "applicationName", "deviceProfileId", "deviceProfileName",
    "deviceName", "devEui", "deviceClassEnabled", "tags",
}  # fmt: skip


@pytest.fixture(scope="module")
def built(mixed: Run) -> list[tuple[Uplink | Join, str, dict[str, Any]]]:
    builder = ChirpStackBuilder(5)
    return [(r, t, json.loads(p)) for r in mixed.records for t, p in [builder.build(r)]]


def test_topic_uses_application_uuid_and_lowercase_dev_eui(built):
    for record, topic, _ in built:
        assert TOPIC.match(topic)
        assert record.device.dev_eui.lower() in topic and record.device.app.cs_application_id in topic


def test_top_level_fields_are_always_present(built):
    zero_f_cnt = unconfirmed = 0
    for record, _, message in built:
        if isinstance(record, Join):
            assert set(message) == {"deduplicationId", "time", "deviceInfo", "devAddr", "regionConfigId"}
            continue
        assert list(message)[: len(TOP)] == TOP
        assert UUID.match(message["deduplicationId"])
        assert TIME.match(message["time"])
        assert message["fCnt"] == record.f_cnt and message["fPort"] == record.f_port
        assert message["confirmed"] is record.confirmed and message["adr"] is True
        assert message["dr"] == 12 - record.spreading_factor
        assert message["devAddr"] == record.session.dev_addr.lower()
        assert message["regionConfigId"] == "eu868"
        zero_f_cnt += record.f_cnt == 0
        unconfirmed += not record.confirmed
    assert zero_f_cnt > 0 and unconfirmed > 0  # fCnt 0 and confirmed false are written, not omitted


def test_device_info(built):
    for record, _, message in built:
        info = message["deviceInfo"]
        assert set(info) == DEVICE_INFO
        assert info["devEui"] == record.device.dev_eui.lower()
        assert (
            UUID.match(info["tenantId"]) and UUID.match(info["applicationId"]) and UUID.match(info["deviceProfileId"])
        )
        assert info["deviceClassEnabled"] == "CLASS_A"


def test_data_and_object(built):
    for record, _, message in built:
        if isinstance(record, Uplink):
            payload = base64.b64decode(message["data"], validate=True)
            assert decoders.decode(record.device.model, message["fPort"], payload) == message["object"]


def test_rx_and_tx_info(built):
    for record, _, message in built:
        if isinstance(record, Join):
            continue
        for entry, rx in zip(message["rxInfo"], record.rx, strict=True):
            assert entry["gatewayId"] == rx.gateway.eui.lower()
            assert isinstance(entry["rssi"], int) and entry["rssi"] == rx.rssi
            assert entry.get("snr", 0.0) == rx.snr and isinstance(entry.get("snr", 0.0), float)
            assert entry.get("channel", 0) == record.channel and entry.get("antenna", 0) == rx.antenna
            assert 0 not in (entry.get("channel"), entry.get("antenna"), entry.get("snr"))
            assert TIME.match(entry["nsTime"]) and TIME.match(entry["gwTime"])
            assert entry["crcStatus"] == "CRC_OK" and base64.b64decode(entry["context"])
            assert 0 < entry["uplinkId"] < 2**32
        assert message["txInfo"] == {
            "frequency": radio.EU868_CHANNELS[record.channel],
            "modulation": {
                "lora": {
                    "bandwidth": 125000,
                    "spreadingFactor": record.spreading_factor,
                    "codeRate": "CR_4_5",
                }
            },
        }


def test_object_is_omitted_without_a_codec(mixed: Run):
    message = json.loads(ChirpStackBuilder(5, decoded=False).build(mixed.uplinks()[0])[1])
    assert "object" not in message and message["data"]
