"""ChirpStack v4 MQTT integration events (`application/{application_id}/device/{dev_eui}/event/up`
and `/event/join`), as the reference describes the v4.1+ JSON.

Rules followed: camelCase keys; top-level fields always present even when zero (`fCnt: 0`,
`confirmed: false`, `data: ""`), unset sub-messages (`object` without a codec) omitted; inside
`rxInfo`/`txInfo` zero values omitted; `rssi` an integer, `snr` a float, `frequency` a number; EUIs and
DevAddr lowercase hex; timestamps with `+00:00`; `data` and `context` base64. ChirpStack has no Packet
Broker hop, so every gateway appears as a gateway of its own.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

from simulators import ids, radio
from simulators.model import Device, Gateway, Join, Record, Uplink
from simulators.timefmt import NS, chirpstack_time

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
REGION = "eu868"
_METADATA = {"region_config_id": REGION, "region_common_name": "EU868"}


def topic(device: Device, event: str = "up") -> str:
    """`application/{application UUID}/device/{dev_eui lowercase}/event/{event}`."""
    return f"application/{device.app.cs_application_id}/device/{device.dev_eui.lower()}/event/{event}"


class ChirpStackBuilder:
    """Builds ChirpStack events from scenario records. `decoded` adds `object` (a device-profile codec)."""

    def __init__(self, seed: int | str = 0, *, decoded: bool = True) -> None:
        self.rng = random.Random(f"chirpstack:{seed}")
        self.decoded = decoded
        self._devices: dict[str, tuple[str, dict[str, Any]]] = {}
        self._gateways: dict[str, tuple[str, dict[str, Any] | None]] = {}

    def build(self, record: Record) -> tuple[str, str]:
        if isinstance(record, Join):
            return self.join(record)
        return self.uplink(record)

    def _device(self, device: Device) -> tuple[str, dict[str, Any]]:
        cached = self._devices.get(device.device_id)
        if cached is None:
            app = device.app
            info = {
                "tenantId": app.cs_tenant_id,
                "tenantName": app.cs_tenant_name,
                "applicationId": app.cs_application_id,
                "applicationName": app.application_id,
                "deviceProfileId": device.profile_id,
                "deviceProfileName": device.profile_name,
                "deviceName": device.device_id,
                "devEui": device.dev_eui.lower(),
                "deviceClassEnabled": "CLASS_A",
                "tags": device.attributes,
            }
            cached = (topic(device), info)
            self._devices[device.device_id] = cached
        return cached

    def _gateway(self, gateway: Gateway) -> tuple[str, dict[str, Any] | None]:
        cached = self._gateways.get(gateway.gateway_id)
        if cached is None:
            location = None
            if not gateway.packet_broker:
                location = {
                    "latitude": gateway.latitude,
                    "longitude": gateway.longitude,
                    "altitude": gateway.altitude,
                }
            cached = (gateway.eui.lower(), location)
            self._gateways[gateway.gateway_id] = cached
        return cached

    def uplink(self, up: Uplink) -> tuple[str, str]:
        topic_, info = self._device(up.device)
        rng = self.rng
        t_ns = int(up.time * 1_000_000) * 1000
        ns_ns = t_ns + rng.randrange(15_000_000, 40_000_000) + rng.randrange(1000)
        rx_info = []
        for rx in up.rx:
            gateway_id, location = self._gateway(rx.gateway)
            entry: dict[str, Any] = {
                "gatewayId": gateway_id,
                "uplinkId": rng.getrandbits(32) or 1,
                "gwTime": chirpstack_time(t_ns),
                "nsTime": chirpstack_time(ns_ns),
                "rssi": int(rx.rssi),
            }
            if rx.snr:
                entry["snr"] = rx.snr
            if up.channel:
                entry["channel"] = up.channel
            if rx.antenna:
                entry["antenna"] = rx.antenna
            if location is not None:
                entry["location"] = location
            entry["context"] = ids.b64_bytes(rng, 4)
            entry["metadata"] = _METADATA
            entry["crcStatus"] = "CRC_OK"
            rx_info.append(entry)
        message: dict[str, Any] = {
            "deduplicationId": ids.uuid4(rng),
            "time": chirpstack_time(ns_ns),
            "deviceInfo": info,
            "devAddr": up.session.dev_addr.lower(),
            "adr": True,
            "dr": 12 - up.spreading_factor,
            "fCnt": up.f_cnt,
            "fPort": up.f_port,
            "confirmed": up.confirmed,
            "data": base64.b64encode(up.payload).decode("ascii"),
        }
        if self.decoded and up.payload:
            message["object"] = up.decoded
        message["rxInfo"] = rx_info
        message["txInfo"] = {
            "frequency": radio.EU868_CHANNELS[up.channel],
            "modulation": {
                "lora": {
                    "bandwidth": radio.BANDWIDTH,
                    "spreadingFactor": up.spreading_factor,
                    "codeRate": "CR_4_5",
                }
            },
        }
        message["regionConfigId"] = REGION
        return topic_, _encode(message)

    def join(self, join: Join) -> tuple[str, str]:
        """The `join` event ChirpStack sends with the first uplink after an OTAA join."""
        _, info = self._device(join.device)
        message = {
            "deduplicationId": ids.uuid4(self.rng),
            "time": chirpstack_time(int(join.time * NS)),
            "deviceInfo": info,
            "devAddr": join.session.dev_addr.lower(),
            "regionConfigId": REGION,
        }
        return topic(join.device, "join"), _encode(message)
