"""The Things Stack v3 MQTT messages (`v3/{app}@{tenant}/devices/{device}/up` and `/join`), field by
field as `shared/reference/tts-chirpstack-formats.md` describes them.

Encoding rules followed: zero values are omitted (no `f_cnt` on FCnt 0, no `snr` of 0, no
`channel_index`/`antenna_index` of 0, no `confirmed: false`, no empty `frm_payload`), 64-bit integers
(`frequency`) are strings, bytes are standard base64, EUIs and DevAddr are uppercase hex, timestamps
are RFC 3339 with `Z` and 0/3/6/9 fraction digits, durations are `"<seconds>s"`. The static parts of a
message (device ids, version ids, gateway locations, radio settings) are serialised once per device,
gateway or data rate, and an uplink is assembled as text around them; only the decoded payload is
serialised per message (by orjson where its text equals `json`'s, see `compact_json`). The per-message
cost left is the ULIDs, timestamps and that payload (docs/simulators.md, Performance).
"""

from __future__ import annotations

import base64
import json
import random
import re
from functools import lru_cache
from typing import Any

import orjson

from simulators import ids, radio
from simulators.model import Device, Gateway, Join, Record, Session, Uplink
from simulators.timefmt import NS, tts_time

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
#: orjson output that may differ from `json`'s: exponent floats (`1e-05` vs `0.00001`) and `null`
#: (orjson writes NaN and infinities as null; json writes NaN). Anything matching goes through `json`.
_ORJSON_DIFFERS = re.compile(rb"null|\d[eE]")


def compact_json(value: Any) -> str:
    """`_encode(value)`, by orjson when its text is provably the same (several times faster: one
    decoded payload per uplink is the largest JSON the builder writes)."""
    try:
        out = orjson.dumps(value)
    except TypeError:  # integers beyond 64 bits, non-string keys: json's business
        return _encode(value)
    if _ORJSON_DIFFERS.search(out):
        return _encode(value)
    return out.decode()


BAND_ID = "EU_863_870"
_RPC = "rpc:/ttn.lorawan.v3.GsNs/HandleUplink:"
#: What the Console's "Simulate uplink" sends as radio metadata (code: console uplink-form).
SIMULATED_RX = ({"gateway_ids": {"gateway_id": "test"}, "rssi": 42, "channel_rssi": 42, "snr": 4.2},)
SIMULATED_SETTINGS = {
    "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
    "frequency": "868000000",
}


def topic(device: Device, event: str = "up") -> str:
    """`v3/{application_id}@{tenant_id}/devices/{device_id}/{event}`."""
    return f"v3/{device.app.application_id}@{device.app.tenant_id}/devices/{device.device_id}/{event}"


@lru_cache(maxsize=1024)
def _airtime(spreading_factor: int, payload_len: int) -> str:
    return duration(radio.airtime_ns(spreading_factor, payload_len))


def duration(ns: int) -> str:
    """A protobuf JSON duration: seconds with 0, 3, 6 or 9 fraction digits and an `s`."""
    sec, frac = divmod(ns, NS)
    if frac == 0:
        return f"{sec}s"
    if frac % 1_000_000 == 0:
        return f"{sec}.{frac // 1_000_000:03d}s"
    if frac % 1_000 == 0:
        return f"{sec}.{frac // 1_000:06d}s"
    return f"{sec}.{frac:09d}s"


class TtsBuilder:
    """Builds TTS messages from scenario records.

    `decoded` adds `decoded_payload` (as a Device Repository formatter would); `simulated` produces the
    Console/`SimulateUplink` form instead of a network uplink. `seed` drives the ids and jitter.
    """

    def __init__(self, seed: int | str = 0, *, decoded: bool = True, simulated: bool = False) -> None:
        self.rng = random.Random(f"tts:{seed}")
        self.decoded = decoded
        self.simulated = simulated
        self._devices: dict[str, tuple[str, dict[str, Any], str]] = {}
        self._ids: dict[tuple[str, str], dict[str, Any]] = {}
        self._heads: dict[tuple[str, str], str] = {}
        self._gateways: dict[str, tuple[str, str, str, int]] = {}
        self._frames: dict[tuple[str, bytes], str] = {}

    def build(self, record: Record) -> tuple[str, str]:
        """`(topic, payload text)` for an uplink or a join."""
        if isinstance(record, Join):
            return self.join(record)
        return self.uplink(record)

    # -- static parts, built once and kept as JSON text ------------------------------------------------

    def _device(self, device: Device) -> tuple[str, dict[str, Any], str]:
        """(topic, version_ids, the JSON text that closes an uplink: version ids, network ids, attributes)."""
        cached = self._devices.get(device.device_id)
        if cached is None:
            version_ids = {
                "brand_id": device.brand_id,
                "model_id": device.model_id,
                "hardware_version": device.hardware_version,
                "firmware_version": device.firmware_version,
                "band_id": BAND_ID,
            }
            app = device.app
            network_ids = {
                "net_id": app.net_id,
                "ns_id": "EC656E0000000181",
                "tenant_id": app.tenant_id,
                "cluster_id": app.cluster_id,
                "cluster_address": app.cluster_address,
            }
            tail = f',"version_ids":{_encode(version_ids)},"network_ids":{_encode(network_ids)}'
            if device.attributes:
                tail += f',"attributes":{_encode(device.attributes)}'
            cached = (topic(device), version_ids, tail + "}}")
            self._devices[device.device_id] = cached
        return cached

    def _end_device_ids(self, device: Device, session: Session) -> dict[str, Any]:
        key = (device.device_id, session.dev_addr)
        ids_ = self._ids.get(key)
        if ids_ is None:
            ids_ = {
                "device_id": device.device_id,
                "application_ids": {"application_id": device.app.application_id},
                "dev_eui": device.dev_eui,
                "join_eui": device.join_eui,
                "dev_addr": session.dev_addr,
            }
            self._ids[key] = ids_
            self._heads[key] = '{"end_device_ids":' + _encode(ids_) + ',"correlation_ids":['
        return ids_

    def _gateway(self, gateway: Gateway) -> tuple[str, str, str, int]:
        """(JSON opening an rx_metadata entry, location member or "", gs:conn id, concentrator offset)."""
        cached = self._gateways.get(gateway.gateway_id)
        if cached is None:
            if gateway.packet_broker:
                head, location = '{"gateway_ids":{"gateway_id":"packetbroker"}', ""
            else:
                gateway_ids = {"gateway_id": gateway.gateway_id, "eui": gateway.eui}
                place = {
                    "latitude": gateway.latitude,
                    "longitude": gateway.longitude,
                    "altitude": gateway.altitude,
                    "source": "SOURCE_REGISTRY",
                }
                head, location = '{"gateway_ids":' + _encode(gateway_ids), ',"location":' + _encode(place)
            conn = "gs:conn:" + ids.ulid(self.rng, 1_700_000_000_000 + self.rng.randrange(10**9))
            cached = (head, location, conn, self.rng.getrandbits(32))
            self._gateways[gateway.gateway_id] = cached
        return cached

    @staticmethod
    @lru_cache(maxsize=64)
    def _settings(spreading_factor: int, channel: int) -> str:
        data_rate = {"lora": {"bandwidth": radio.BANDWIDTH, "spreading_factor": spreading_factor, "coding_rate": "4/5"}}
        return f'"settings":{{"data_rate":{_encode(data_rate)},"frequency":"{radio.EU868_CHANNELS[channel]}"'

    # -- messages ----------------------------------------------------------------------------------

    def uplink(self, up: Uplink) -> tuple[str, str]:
        """A network uplink (or the simulated form). Built as text from cached JSON fragments; the
        tests parse it and check every field against the reference's rules."""
        if self.simulated:
            return self._simulated(up)
        device = up.device
        topic_, _, tail = self._device(device)
        key = (device.device_id, up.session.dev_addr)
        head = self._heads.get(key)
        if head is None:
            self._end_device_ids(device, up.session)
            head = self._heads[key]
        rng = self.rng
        rnd = rng.random
        t_ns = int(up.time * 1_000_000) * 1000  # gateway clocks give microseconds
        gs_ns = t_ns + 15_000_000 + int(rnd() * 25_000_000)
        ns_ns = gs_ns + 5_000_000 + int(rnd() * 20_000_000)
        as_ns = ns_ns + 200_000_000 + int(rnd() * 60_000_000)
        ns_ms = ns_ns // 1_000_000
        gw_time = tts_time(t_ns)
        gs_time = tts_time(gs_ns)
        correlation = ["as:up:" + ids.ulid(rng, as_ns // 1_000_000)]
        entries = []
        settings_ts = 0
        channel = f',"channel_index":{up.channel}' if up.channel else ""
        for rx in up.rx:
            gw_head, location, conn, offset = self._gateway(rx.gateway)
            snr = f',"snr":{rx.snr}' if rx.snr else ""
            if rx.gateway.packet_broker:
                ms = t_ns // 1_000_000
                pb = _encode(self._packet_broker(rx.gateway, device, ms))
                entries.append(
                    f'{gw_head},"packet_broker":{pb},"time":"{tts_time(ms * 1_000_000)}","rssi":{rx.rssi},'
                    f'"channel_rssi":{rx.rssi}{snr},"received_at":"{tts_time((ms + 60) * 1_000_000)}"}}'
                )
                continue
            if conn not in correlation:  # one gateway connection and one GS uplink per gateway
                correlation.append(conn)
                correlation.append("gs:uplink:" + ids.ulid(rng, gs_ns // 1_000_000))
            timestamp = (t_ns // 1000 + offset) & 0xFFFFFFFF
            settings_ts = settings_ts or timestamp
            if rx.antenna:
                antenna, token = f',"antenna_index":{rx.antenna}', ""
            else:
                antenna, token = "", f',"uplink_token":"{ids.b64_bytes(rng, 40)}"'
            entries.append(
                f'{gw_head}{antenna},"time":"{gw_time}","timestamp":{timestamp},"rssi":{rx.rssi},'
                f'"channel_rssi":{rx.rssi}{snr}{location}{token}{channel},"received_at":"{gs_time}"}}'
            )
        correlation.append("ns:uplink:" + ids.ulid(rng, ns_ms))
        correlation.append(_RPC + ids.ulid(rng, ns_ms))
        correlation.sort()
        corr = '","'.join(correlation)
        rx_metadata = ",".join(entries)
        payload = self._frame(device.model, up) if up.payload else ""
        f_port = f',"f_port":{up.f_port}' if up.f_port else ""
        f_cnt = f',"f_cnt":{up.f_cnt}' if up.f_cnt else ""
        settings = self._settings(up.spreading_factor, up.channel)
        if settings_ts:
            settings += f',"timestamp":{settings_ts},"time":"{gw_time}"'
        confirmed = ',"confirmed":true' if up.confirmed else ""
        airtime = _airtime(up.spreading_factor, len(up.payload))
        text = (
            f'{head}"{corr}"],"received_at":"{tts_time(as_ns)}",'
            f'"uplink_message":{{"session_key_id":"{up.session.session_key_id}"{f_port}{f_cnt}{payload},'
            f'"rx_metadata":[{rx_metadata}],{settings}}},"received_at":"{tts_time(ns_ns)}"{confirmed},'
            f'"consumed_airtime":"{airtime}"{tail}'
        )
        return topic_, text

    def _frame(self, model: str, up: Uplink) -> str:
        """`frm_payload` and `decoded_payload` members; cached by frame, since the decoded payload is
        a function of the model and the bytes, and readings repeat."""
        key = (model, up.payload)
        text = self._frames.get(key)
        if text is None:
            text = f',"frm_payload":"{base64.b64encode(up.payload).decode("ascii")}"'
            if self.decoded:
                text += ',"decoded_payload":' + compact_json(up.decoded)
            if len(self._frames) >= 100_000:
                self._frames.clear()
            self._frames[key] = text
        return text

    def _simulated(self, up: Uplink) -> tuple[str, str]:
        """The Console / `SimulateUplink` form: no session, no FCnt, placeholder gateway `test`."""
        topic_, version_ids, _ = self._device(up.device)
        as_ns = int(up.time * NS) + self.rng.randrange(200_000_000, 260_000_000)
        body: dict[str, Any] = {}
        self._payload(body, up)
        body["rx_metadata"] = SIMULATED_RX
        body["settings"] = SIMULATED_SETTINGS
        body["version_ids"] = version_ids
        message = {
            "end_device_ids": self._end_device_ids(up.device, up.session),
            "correlation_ids": ["as:up:" + ids.ulid(self.rng, as_ns // 1_000_000)],
            "received_at": tts_time(as_ns),
            "uplink_message": body,
            "simulated": True,
        }
        return topic_, _encode(message)

    def _payload(self, body: dict[str, Any], up: Uplink) -> None:
        """f_port and frm_payload with zero values omitted, then the decoded payload (simulated form)."""
        if up.f_port:
            body["f_port"] = up.f_port
        if up.payload:
            body["frm_payload"] = base64.b64encode(up.payload).decode("ascii")
            if self.decoded:
                body["decoded_payload"] = up.decoded

    def _packet_broker(self, gateway: Gateway, device: Device, ms: int) -> dict[str, Any]:
        return {
            "message_id": ids.ulid(self.rng, ms),
            "forwarder_net_id": gateway.forwarder_net_id,
            "forwarder_tenant_id": gateway.forwarder_tenant_id,
            "forwarder_cluster_id": gateway.forwarder_cluster_id,
            "forwarder_gateway_eui": gateway.eui,
            "forwarder_gateway_id": gateway.gateway_id,
            "home_network_net_id": device.app.net_id,
            "home_network_tenant_id": device.app.tenant_id,
            "home_network_cluster_id": device.app.cluster_id,
        }

    def join(self, join: Join) -> tuple[str, str]:
        """A `join_accept` message: the new session key id arrives before the FCnt-0 uplink."""
        ns_ns = int(join.time * NS)
        as_ns = ns_ns + self.rng.randrange(150_000_000, 250_000_000)
        message = {
            "end_device_ids": self._end_device_ids(join.device, join.session),
            "correlation_ids": sorted(
                [
                    "as:up:" + ids.ulid(self.rng, as_ns // 1_000_000),
                    "ns:uplink:" + ids.ulid(self.rng, ns_ns // 1_000_000),
                ]
            ),
            "received_at": tts_time(as_ns),
            "join_accept": {"session_key_id": join.session.session_key_id, "received_at": tts_time(ns_ns)},
        }
        return topic(join.device, "join"), _encode(message)
