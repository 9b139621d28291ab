"""Parse LNS message bodies (The Things Stack v3, ChirpStack v4 JSON) into one `Uplink` shape.

The rules follow the reference's edge-case checklist: a missing field means its proto3 zero value,
`f_cnt` is a full uint32, frequencies may be strings, EUIs are hex, timestamps carry up to 9 fraction
digits and `0001-01-01T00:00:00Z` means "unset". Bodies that are not uplinks (join accepts, downlink
acks, location solutions...) come back as `Other` so the caller can record or skip them; anything that
is not a recognisable LNS message raises `EnvelopeError`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from store.writer import GatewaySeen

#: Body keys of TTS `ApplicationUp` messages that are not uplinks, and what we call them.
TTS_OTHER_KINDS = {
    "join_accept": "join",
    "downlink_ack": "downlink_ack",
    "downlink_nack": "downlink_nack",
    "downlink_sent": "downlink_sent",
    "downlink_failed": "downlink_failed",
    "downlink_queued": "downlink_queued",
    "downlink_queue_invalidated": "downlink_queue_invalidated",
    "location_solved": "location_solved",
    "service_data": "service_data",
    "uplink_normalized": "uplink_normalized",
}
CHIRPSTACK_OTHER_EVENTS = {"join", "ack", "txack", "status", "log", "location", "integration"}


class EnvelopeError(ValueError):
    """The body is JSON but not a message we understand; the reason says which field is wrong."""


Gateway = GatewaySeen  # the store's record of a gateway is exactly what parsing yields


@dataclass(slots=True)
class Uplink:
    """A data uplink, whichever LNS sent it."""

    source: str  # "tts" | "chirpstack"
    device_id: str
    uplink_key: str
    time: datetime
    f_port: int
    f_cnt: int | None
    payload: bytes
    application_id: str | None = None
    dev_eui: str | None = None
    join_eui: str | None = None
    dev_addr: str | None = None
    session_key_id: str | None = None
    simulated: bool = False
    encrypted: bool = False
    frequency_hz: int | None = None
    spreading_factor: int | None = None
    bandwidth_hz: int | None = None
    gateways: list[Gateway] = field(default_factory=list)
    rx_metadata: list[dict[str, Any]] = field(default_factory=list)
    lns_decoded: dict[str, Any] | None = None
    model: str | None = None  # brand_id/model_id from the LNS (TTS version_ids, ChirpStack tags)

    @property
    def rssi(self) -> float | None:
        values = [g.rssi for g in self.gateways if g.rssi is not None]
        return max(values) if values else None

    @property
    def snr(self) -> float | None:
        values = [g.snr for g in self.gateways if g.snr is not None]
        return max(values) if values else None

    @property
    def mac_only(self) -> bool:
        """FPort 0 frames carry MAC commands only: the device is alive, but there is no reading."""
        return self.f_port == 0


@dataclass(frozen=True, slots=True)
class Other:
    """A non-uplink message (join accept, downlink ack, ...): `kind` says which."""

    source: str
    kind: str
    device_id: str | None
    time: datetime | None


Message = Uplink | Other


def parse(topic: str, body: dict[str, Any]) -> Message:
    """Dispatch on the topic's shape, then on the body's keys."""
    if topic.startswith("application/") or "deduplicationId" in body or "deviceInfo" in body:
        return parse_chirpstack(topic, body)
    return parse_tts(topic, body)


# --- shared helpers ---------------------------------------------------------------------------------


def _obj(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        msg = f"{where} must be an object, got {type(value).__name__}"
        raise EnvelopeError(msg)
    return value


def _int(value: Any, where: str) -> int | None:
    """uint32 as a number, uint64 as a string: both become int; missing stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        msg = f"{where} must be a number, got a boolean"
        raise EnvelopeError(msg)
    try:
        return int(value)
    except (TypeError, ValueError):
        msg = f"{where} must be an integer, got {value!r}"
        raise EnvelopeError(msg) from None


def _float(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def parse_time(value: Any, where: str) -> datetime | None:
    """RFC 3339 (`Z` or `+00:00`, 0-9 fraction digits) to an aware UTC datetime; zero time is None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        msg = f"{where} must be an RFC 3339 string, got {type(value).__name__}"
        raise EnvelopeError(msg)
    if value.startswith("0001-01-01"):
        return None
    try:
        parsed = datetime.fromisoformat(value)  # the common case: `Z`, and 0, 3 or 6 fraction digits
    except ValueError:
        parsed = _fromisoformat_trimmed(value, where)
    if parsed.tzinfo is None:
        msg = f"{where} has no time zone: {value!r}"
        raise EnvelopeError(msg)
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


def _fromisoformat_trimmed(value: str, where: str) -> datetime:
    """Python 3.11 takes at most 6 fraction digits reliably: trim nanoseconds, then parse."""
    text = value
    dot = text.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        text = text[: min(end, dot + 7)] + text[end:]
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        msg = f"{where} is not an RFC 3339 timestamp: {value!r}"
        raise EnvelopeError(msg) from None


def _b64(value: Any, where: str) -> bytes:
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        msg = f"{where} must be a base64 string"
        raise EnvelopeError(msg)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        msg = f"{where} is not valid base64: {value[:40]!r}"
        raise EnvelopeError(msg) from None


def _model(brand: Any, model: Any) -> str | None:
    if isinstance(brand, str) and isinstance(model, str) and brand and model:
        return f"{brand}/{model}".lower()
    return None


# --- The Things Stack v3 ----------------------------------------------------------------------------


def parse_tts(topic: str, body: dict[str, Any]) -> Message:
    ids = _obj(body.get("end_device_ids"), "end_device_ids")
    device_id = ids.get("device_id")
    if not isinstance(device_id, str) or not device_id:
        msg = "end_device_ids.device_id is missing: not a The Things Stack message"
        raise EnvelopeError(msg)
    top_time = parse_time(body.get("received_at"), "received_at")
    if "uplink_message" not in body:
        for key, kind in TTS_OTHER_KINDS.items():
            if key in body:
                inner = _obj(body[key], key)
                return Other(
                    "tts",
                    kind,
                    device_id,
                    parse_time(inner.get("received_at"), key) or top_time,
                )
        known = ", ".join(["uplink_message", *TTS_OTHER_KINDS])
        msg = f"TTS message for {device_id} has none of the known keys ({known})"
        raise EnvelopeError(msg)
    up = _obj(body["uplink_message"], "uplink_message")
    simulated = bool(body.get("simulated", False))
    time = parse_time(up.get("received_at"), "uplink_message.received_at") or top_time
    if time is None:
        msg = "uplink has neither uplink_message.received_at nor received_at"
        raise EnvelopeError(msg)
    f_port = _int(up.get("f_port", 0), "uplink_message.f_port") or 0
    f_cnt = _int(up.get("f_cnt", 0), "uplink_message.f_cnt")
    session_key_id = up.get("session_key_id") if isinstance(up.get("session_key_id"), str) else None
    correlation = body.get("correlation_ids") or []
    app = _obj(ids.get("application_ids"), "end_device_ids.application_ids").get("application_id")
    settings = _obj(up.get("settings"), "uplink_message.settings")
    lora = _obj(_obj(settings.get("data_rate"), "settings.data_rate").get("lora"), "settings.data_rate.lora")
    version = _obj(up.get("version_ids"), "uplink_message.version_ids")
    decoded = up.get("decoded_payload")
    rx, gateways = _tts_gateways(up.get("rx_metadata"))
    return Uplink(
        source="tts",
        device_id=device_id,
        uplink_key=_tts_key(device_id, session_key_id, f_cnt, correlation, simulated=simulated, time=time),
        time=time,
        f_port=f_port,
        f_cnt=f_cnt,
        payload=_b64(up.get("frm_payload"), "uplink_message.frm_payload"),
        application_id=app if isinstance(app, str) else None,
        dev_eui=ids.get("dev_eui"),
        join_eui=ids.get("join_eui"),
        dev_addr=ids.get("dev_addr"),
        session_key_id=session_key_id,
        simulated=simulated,
        encrypted="app_s_key" in up,
        frequency_hz=_int(settings.get("frequency"), "settings.frequency"),
        spreading_factor=_int(lora.get("spreading_factor"), "settings.data_rate.lora.spreading_factor"),
        bandwidth_hz=_int(lora.get("bandwidth"), "settings.data_rate.lora.bandwidth"),
        gateways=gateways,
        rx_metadata=rx,
        lns_decoded=decoded if isinstance(decoded, dict) else None,
        model=_model(version.get("brand_id"), version.get("model_id")),
    )


def _tts_key(
    device_id: str,
    session_key_id: str | None,
    f_cnt: int | None,
    correlation: Any,
    *,
    simulated: bool,
    time: datetime,
) -> str:
    """The natural key: (device, session key id, f_cnt); simulated uplinks use their `as:up:` id."""
    if session_key_id and not simulated:
        return f"tts:{device_id}:{session_key_id}:{f_cnt or 0}"
    ids = correlation if isinstance(correlation, list) else []
    for prefix in ("as:up:", "ns:uplink:"):
        for cid in ids:
            if isinstance(cid, str) and cid.startswith(prefix):
                return f"tts:{device_id}:{cid}"
    # No session key and no correlation id (some ABP/stored messages): the uplink time is what is left.
    return f"tts:{device_id}:t:{time.isoformat()}:{f_cnt or 0}"


def _tts_gateways(value: Any) -> tuple[list[dict[str, Any]], list[Gateway]]:
    if value is None:
        return [], []
    if not isinstance(value, list):
        msg = "uplink_message.rx_metadata must be a list"
        raise EnvelopeError(msg)
    kept: list[dict[str, Any]] = []
    by_key: dict[str, Gateway] = {}
    for entry in value:
        if not isinstance(entry, dict):
            continue
        if "uplink_token" in entry:  # opaque, large, and only TTS can use it
            entry = entry.copy()
            del entry["uplink_token"]
        kept.append(entry)
        gw_ids = _obj(entry.get("gateway_ids"), "rx_metadata[].gateway_ids")
        gw_id = str(gw_ids.get("gateway_id", ""))
        eui = gw_ids.get("eui")
        pb = entry.get("packet_broker")
        if isinstance(pb, dict):
            fwd = pb.get("forwarder_gateway_eui") or pb.get("forwarder_gateway_id") or ""
            key = f"pb:{pb.get('forwarder_net_id', '')}:{pb.get('forwarder_tenant_id', '')}:{fwd}"
            eui = pb.get("forwarder_gateway_eui") or eui
        else:
            key = f"{gw_id}:{eui or ''}"
        loc = _obj(entry.get("location"), "rx_metadata[].location")
        gw = Gateway(
            key,
            gw_id,
            eui if isinstance(eui, str) else None,
            isinstance(pb, dict),
            _float(entry.get("rssi", entry.get("channel_rssi"))),
            _float(entry.get("snr", 0.0)),
            _float(loc.get("latitude")),
            _float(loc.get("longitude")),
        )
        prev = by_key.get(key)
        # Several antennas of one gateway: keep the best signal.
        if prev is None or (gw.rssi or -1e9) > (prev.rssi or -1e9):
            by_key[key] = gw
    return kept, list(by_key.values())


# --- ChirpStack v4 ----------------------------------------------------------------------------------


def parse_chirpstack(topic: str, body: dict[str, Any]) -> Message:
    info = _obj(body.get("deviceInfo"), "deviceInfo")
    dev_eui = info.get("devEui")
    event = topic.rsplit("/", 1)[-1] if topic.startswith("application/") else "up"
    if not isinstance(dev_eui, str) or not dev_eui:
        msg = "deviceInfo.devEui is missing: not a ChirpStack event"
        raise EnvelopeError(msg)
    device_id = dev_eui.lower()
    time = parse_time(body.get("time"), "time")
    if event != "up":
        if event in CHIRPSTACK_OTHER_EVENTS:
            return Other("chirpstack", event, device_id, time)
        msg = f"unknown ChirpStack event {event!r}"
        raise EnvelopeError(msg)
    dedup = body.get("deduplicationId")
    if not isinstance(dedup, str) or not dedup:
        msg = "ChirpStack uplink without deduplicationId"
        raise EnvelopeError(msg)
    rx_raw = body.get("rxInfo") or []
    if not isinstance(rx_raw, list):
        msg = "rxInfo must be a list"
        raise EnvelopeError(msg)
    rx = [r for r in rx_raw if isinstance(r, dict)]
    if time is None:  # `time` is always set by ChirpStack; fall back to the NS time of the first gateway
        time = next((t for r in rx if (t := parse_time(r.get("nsTime"), "rxInfo[].nsTime"))), None)
    if time is None:
        msg = "ChirpStack uplink has no time and no rxInfo[].nsTime"
        raise EnvelopeError(msg)
    tx = _obj(body.get("txInfo"), "txInfo")
    lora = _obj(_obj(tx.get("modulation"), "txInfo.modulation").get("lora"), "txInfo.modulation.lora")
    tags = _obj(info.get("tags"), "deviceInfo.tags")
    gateways = []
    for r in rx:
        loc = _obj(r.get("location"), "rxInfo[].location")
        gw_id = str(r.get("gatewayId", ""))
        gateways.append(
            Gateway(
                f"{gw_id}:{gw_id}",
                gw_id,
                gw_id or None,
                False,
                _float(r.get("rssi")),
                _float(r.get("snr", 0.0)),
                _float(loc.get("latitude")),
                _float(loc.get("longitude")),
            )
        )
    obj = body.get("object")
    return Uplink(
        source="chirpstack",
        device_id=device_id,
        uplink_key=f"cs:{dedup}",
        time=time,
        f_port=_int(body.get("fPort", 0), "fPort") or 0,
        f_cnt=_int(body.get("fCnt", 0), "fCnt"),
        payload=_b64(body.get("data"), "data"),
        application_id=info.get("applicationId"),
        dev_eui=device_id,
        dev_addr=body.get("devAddr"),
        encrypted="joinServerContext" in body,
        frequency_hz=_int(tx.get("frequency"), "txInfo.frequency"),
        spreading_factor=_int(lora.get("spreadingFactor"), "txInfo.modulation.lora.spreadingFactor"),
        bandwidth_hz=_int(lora.get("bandwidth"), "txInfo.modulation.lora.bandwidth"),
        gateways=gateways,
        rx_metadata=[{k: v for k, v in r.items() if k != "context"} for r in rx],
        lns_decoded=obj if isinstance(obj, dict) else None,
        model=_model(tags.get("brand_id"), tags.get("model_id")),
    )
