"""The nouns every scenario and builder shares: gateways, applications, devices, sessions, uplinks, labels.

Scenarios produce `Uplink` and `Join` records (network-server independent); the TTS and ChirpStack
builders turn them into each server's JSON. Times are float seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from simulators.timefmt import iso


@dataclass(frozen=True, slots=True)
class Gateway:
    """A receiving gateway. `packet_broker` marks a community gateway heard through Packet Broker, which
    TTS reports as gateway id `packetbroker` with forwarder details instead of an EUI."""

    gateway_id: str
    eui: str  # uppercase hex
    latitude: float
    longitude: float
    altitude: float = 0.0
    packet_broker: bool = False
    forwarder_net_id: str = "000013"
    forwarder_tenant_id: str = "ttn"
    forwarder_cluster_id: str = "ttn-eu1"


@dataclass(frozen=True, slots=True)
class Link:
    """A device-to-gateway radio path: mean RSSI (dBm) and how many antennas of the gateway hear it."""

    gateway: Gateway
    rssi: float
    antennas: int = 1


@dataclass(frozen=True, slots=True)
class Application:
    """One application as both servers name it: TTS `app@tenant`, ChirpStack UUIDs and names."""

    application_id: str
    tenant_id: str
    cs_application_id: str
    cs_tenant_id: str
    cs_tenant_name: str
    net_id: str = "000013"
    cluster_id: str = "eu1"
    cluster_address: str = "eu1.cloud.thethings.network"


@dataclass(frozen=True, slots=True)
class Device:
    """An end device: identity, model (`brand_id/model_id`), application, radio links and attributes."""

    device_id: str
    dev_eui: str  # uppercase hex
    join_eui: str
    model: str
    app: Application
    links: tuple[Link, ...]
    hardware_version: str = "1.0"
    firmware_version: str = "1.0"
    profile_id: str = ""
    profile_name: str = ""
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def brand_id(self) -> str:
        return self.model.split("/", 1)[0]

    @property
    def model_id(self) -> str:
        return self.model.split("/", 1)[1]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a device is installed and what it watches: what the device registry needs to know of it
    (`lorawatch simulate --devices-out` writes these). Gullies have their pot's geometry (heights above
    the pot floor, mm); care sensors their room and the group (the resident's flat) they belong to."""

    device: Device
    kind: str  # gully | care
    name: str
    latitude: float
    longitude: float
    sensor_height_mm: float | None = None
    outlet_invert_mm: float | None = None
    care_room: str | None = None
    care_group: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """A LoRaWAN session: a new one (new DevAddr, new session key id, FCnt back to 0) after each join."""

    dev_addr: str  # uppercase hex
    session_key_id: str  # base64


class Rx(NamedTuple):
    """One gateway antenna's reception of an uplink (a tuple: one is made per reception, and a frozen
    dataclass costs several times as much to build)."""

    gateway: Gateway
    rssi: float
    snr: float
    antenna: int = 0


@dataclass(slots=True)
class Uplink:
    """One data uplink as the network delivered it (after deduplication across gateways)."""

    time: float
    device: Device
    session: Session
    f_cnt: int
    f_port: int
    payload: bytes
    decoded: dict[str, Any]
    rx: list[Rx]
    spreading_factor: int
    channel: int
    confirmed: bool = False


@dataclass(slots=True)
class Join:
    """A successful OTAA join: the start of a new `session` (TTS `join_accept`, ChirpStack `join`)."""

    time: float
    device: Device
    session: Session


Record = Uplink | Join


@dataclass(slots=True)
class Label:
    """Ground truth: what happened (`label`), to which device, from `start` to `end` (seconds), plus
    details such as `peak_mm`, `alarm_id` or the devices a gateway outage silenced."""

    label: str
    device_id: str
    start: float
    end: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "device_id": self.device_id,
            "start": iso(self.start),
            "end": iso(self.end),
        } | (self.extra)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)
