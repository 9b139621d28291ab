"""Parse LNS message bodies (The Things Stack v3, ChirpStack v4 JSON) into one `Uplink` shape.

The rules follow the reference's edge-case checklist: a missing field means its proto3 zero value,
`f_cnt` is a full uint32, frequencies may be strings, EUIs are hex, timestamps carry up to 9 fraction
digits and `0001-01-01T00:00:00Z` means "unset". Bodies that are not uplinks (join accepts, downlink
acks, location solutions...) come back as `Other` so the caller can record or skip them; anything that
is not a recognisable LNS message raises `EnvelopeError`.

This is the trust boundary: every value parsed here either fits the column it is stored in or the
message is refused with the dotted JSON path of the field (`EnvelopeError.field`). Nothing is coerced
(a string is not a number, a float is not an integer, `"false"` is not false) and nothing is allowed to
wrap or be clipped silently by the database. Values that are only metadata (a gateway's location) are
dropped instead of refusing the uplink.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from store.records import GatewaySeen

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

#: Longest identifier we store (device, application, session key, EUIs, gateway ids, key parts). Real
#: ones are at most 36 characters (TTS ids, UUIDs); a longer one is garbage and would bloat every key.
MAX_ID = 128
#: More gateway entries than this is not an uplink (TTS deduplicates to at most 50); also keeps
#: `gateway_count` far inside its smallint column.
MAX_GATEWAYS = 1000
#: |x| bound for floats stored in `real` columns (rssi, snr): finite, and far beyond any radio value.
MAX_REAL = 1e6

# Column bounds: a value outside refuses the message instead of wrapping or failing the batch.
U8 = (0, 255)  # f_port
U32 = (0, 2**32 - 1)  # f_cnt (bigint column, uint32 on the wire)
I16 = (0, 2**15 - 1)  # spreading_factor (smallint)
I32 = (0, 2**31 - 1)  # bandwidth (integer)
I64 = (0, 2**63 - 1)  # frequency (bigint)


class EnvelopeError(ValueError):
    """The body is JSON but not a message we understand; the reason says which field is wrong and
    `field` is its dotted JSON path (e.g. `uplink_message.rx_metadata[0].rssi`) where one is to blame."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.field = field


Gateway = GatewaySeen  # the store's record of a gateway is exactly what parsing yields


@dataclass(slots=True)
class Uplink:
    """A data uplink, whichever LNS sent it. `application_id` is '' when the body names none."""

    source: str  # "tts" | "chirpstack"
    device_id: str
    uplink_key: str
    time: datetime
    f_port: int
    f_cnt: int | None
    payload: bytes
    application_id: str = ""
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
    time_field: str = "received_at"  # the JSON path `time` came from, for the bounds check's dead letter
    rx_field: str = "uplink_message.rx_metadata"  # the JSON path of `rx_metadata`
    decoded_field: str = "uplink_message.decoded_payload"  # the JSON path of `lns_decoded`

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
    application_id: str = ""


Message = Uplink | Other


def parse(topic: str, body: dict[str, Any]) -> Message:
    """Dispatch on the topic's shape, then on the body's keys."""
    if topic.startswith("application/") or "deduplicationId" in body or "deviceInfo" in body:
        return parse_chirpstack(topic, body)
    return parse_tts(topic, body)


# --- shared helpers ---------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A value for a reason: repr (so NUL and control characters are escaped), never unbounded, and
    never of a container (its repr could be megabytes, or nested past the recursion limit)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = repr(value[:60] if isinstance(value, str) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def _obj(value: Any, where: str) -> dict[str, Any]:
    """An optional sub-object: absent or null is empty (proto3 leaves unset messages out)."""
    if type(value) is dict:
        return value
    if value is None:
        return {}
    if not isinstance(value, dict):
        msg = f"{where} must be an object, got {type(value).__name__}"
        raise EnvelopeError(msg, where)
    return value


def _required_obj(body: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """A sub-object the message cannot be without (`uplink_message`, `end_device_ids`, `deviceInfo`)."""
    value = body.get(key)
    if not isinstance(value, dict):
        got = "null" if value is None else type(value).__name__
        msg = f"{where} must be an object, got {got}"
        raise EnvelopeError(msg, where)
    return value


def _int(value: Any, where: str, bounds: tuple[int, int], *, strings: bool = False) -> int | None:
    """An integer that fits its column, or the message is refused; missing stays None.

    Only JSON integers are taken (`strings`: also strings of ASCII digits, TTS's encoding of uint64).
    A float is refused even when integral (1e30, 5.0): the LNS never sends one, so it is not the
    counter or frequency it claims to be; so is a boolean (`True` is an int to Python)."""
    if value is None:
        return None
    if type(value) is int:  # the hot path: not bool, not a subclass
        number = value
    elif isinstance(value, str) and strings:
        # isascii: str.isdigit also takes other scripts' digits; the length check keeps int() cheap.
        if not (value.isascii() and value.isdigit() and len(value) <= 20):
            msg = f"{where} must be an integer, got {_show(value)}"
            raise EnvelopeError(msg, where)
        number = int(value)
    else:
        kind = "a boolean" if isinstance(value, bool) else _show(value)
        msg = f"{where} must be an integer, got {kind}"
        raise EnvelopeError(msg, where)
    low, high = bounds
    if not low <= number <= high:
        msg = f"{where} = {number} is outside {low}..{high}"
        raise EnvelopeError(msg, where)
    return number


def _real(value: Any, where: str) -> float | None:
    """A float for a `real` column: finite and |x| <= MAX_REAL, or refused (1e308 must never be inf)."""
    if type(value) is float and -MAX_REAL <= value <= MAX_REAL:  # the hot path (also false for nan)
        return value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{where} must be a number, got {_show(value)}"
        raise EnvelopeError(msg, where)
    number = float(value)
    if not -MAX_REAL <= number <= MAX_REAL:  # also false for nan
        msg = f"{where} = {_show(value)} is not a finite number within ±{MAX_REAL:g}"
        raise EnvelopeError(msg, where)
    return number


def _coordinate(value: Any, limit: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and -limit <= number <= limit else None


def _location(value: Any) -> tuple[float | None, float | None]:
    """A gateway's (latitude, longitude), or (None, None) if either is unusable: it is metadata, so a
    bad one is dropped rather than refusing the uplink (or failing the gateways table's checks)."""
    if not isinstance(value, dict):
        return None, None
    lat = _coordinate(value.get("latitude"), 90.0)
    lon = _coordinate(value.get("longitude"), 180.0)
    return (lat, lon) if lat is not None and lon is not None else (None, None)


def _id(value: Any, where: str) -> str | None:
    """An optional identifier: a string of at most MAX_ID characters; absent or '' is None.

    (NUL is not checked here: the pipeline refuses any string with NUL anywhere in the body.)"""
    if type(value) is str and 0 < len(value) <= MAX_ID:  # the hot path: one test
        return value
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        msg = f"{where} must be a string, got {_show(value)}"
        raise EnvelopeError(msg, where)
    if len(value) > MAX_ID:
        msg = f"{where} is {len(value)} characters long, over the limit of {MAX_ID}"
        raise EnvelopeError(msg, where)
    return value


def parse_time(value: Any, where: str) -> datetime | None:
    """RFC 3339 (`Z` or `+00:00`, 0-9 fraction digits) to an aware UTC datetime; zero time is None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        msg = f"{where} must be an RFC 3339 string, got {type(value).__name__}"
        raise EnvelopeError(msg, where)
    if value.startswith("0001-01-01"):
        return None
    try:
        parsed = datetime.fromisoformat(value)  # the common case: `Z`, and 0, 3 or 6 fraction digits
    except ValueError:
        parsed = _fromisoformat_trimmed(value, where)
    if parsed.tzinfo is None:
        msg = f"{where} has no time zone: {_show(value)}"
        raise EnvelopeError(msg, where)
    if parsed.tzinfo is UTC:
        return parsed
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset: outside datetime's range once in UTC
        msg = f"{where} is out of range: {_show(value)}"
        raise EnvelopeError(msg, where) from None


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
        msg = f"{where} is not an RFC 3339 timestamp: {_show(value)}"
        raise EnvelopeError(msg, where) from None


def _b64(value: Any, where: str) -> bytes:
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        msg = f"{where} must be a base64 string"
        raise EnvelopeError(msg, where)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        msg = f"{where} is not valid base64: {_show(value[:40])}"
        raise EnvelopeError(msg, where) from None


def _model(brand: Any, model: Any) -> str | None:
    if isinstance(brand, str) and isinstance(model, str) and brand and model:
        return f"{brand}/{model}".lower()
    return None


def _rx_list(value: Any, where: str) -> list[Any]:
    """The gateway entries: a list of at most MAX_GATEWAYS objects (absent or null is none)."""
    if value is None:
        return []
    if not isinstance(value, list):
        msg = f"{where} must be a list"
        raise EnvelopeError(msg, where)
    if len(value) > MAX_GATEWAYS:
        msg = f"{where} has {len(value)} entries, over the limit of {MAX_GATEWAYS}"
        raise EnvelopeError(msg, where)
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            msg = f"{where}[{i}] must be an object, got {type(entry).__name__}"
            raise EnvelopeError(msg, f"{where}[{i}]")
    return value


# --- The Things Stack v3 ----------------------------------------------------------------------------


def parse_tts(topic: str, body: dict[str, Any]) -> Message:
    if "end_device_ids" not in body:
        msg = "end_device_ids.device_id is missing: not a The Things Stack message"
        raise EnvelopeError(msg, "end_device_ids.device_id")
    ids = _required_obj(body, "end_device_ids", "end_device_ids")
    device_id = _id(ids.get("device_id"), "end_device_ids.device_id")
    if device_id is None:
        msg = "end_device_ids.device_id is missing: not a The Things Stack message"
        raise EnvelopeError(msg, "end_device_ids.device_id")
    app_where = "end_device_ids.application_ids.application_id"
    app = _id(_obj(ids.get("application_ids"), "end_device_ids.application_ids").get("application_id"), app_where)
    top_time = parse_time(body.get("received_at"), "received_at")
    if "uplink_message" not in body:
        for key, kind in TTS_OTHER_KINDS.items():
            if key in body:
                inner = _obj(body[key], key)
                when = parse_time(inner.get("received_at"), f"{key}.received_at") or top_time
                return Other("tts", kind, device_id, when, app or "")
        known = ", ".join(["uplink_message", *TTS_OTHER_KINDS])
        msg = f"TTS message for {device_id} has none of the known keys ({known})"
        raise EnvelopeError(msg)
    up = _required_obj(body, "uplink_message", "uplink_message")
    simulated = body.get("simulated", False)
    if simulated is not True and simulated is not False:
        msg = f"simulated must be true or false, got {_show(simulated)}"
        raise EnvelopeError(msg, "simulated")
    time_field = "uplink_message.received_at"
    time = parse_time(up.get("received_at"), time_field)
    if time is None:
        time, time_field = top_time, "received_at"
    if time is None:
        msg = "uplink has neither uplink_message.received_at nor received_at"
        raise EnvelopeError(msg, "uplink_message.received_at")
    f_port = _int(up.get("f_port"), "uplink_message.f_port", U8) or 0
    f_cnt = _int(up.get("f_cnt", 0), "uplink_message.f_cnt", U32, strings=True)
    session_key_id = _id(up.get("session_key_id"), "uplink_message.session_key_id")
    settings = _obj(up.get("settings"), "uplink_message.settings")
    data_rate = _obj(settings.get("data_rate"), "uplink_message.settings.data_rate")
    lora = _obj(data_rate.get("lora"), "uplink_message.settings.data_rate.lora")
    version = _obj(up.get("version_ids"), "uplink_message.version_ids")
    decoded = up.get("decoded_payload")
    rx, gateways = _tts_gateways(up.get("rx_metadata"))
    return Uplink(
        source="tts",
        device_id=device_id,
        uplink_key=_tts_key(
            f"{app}/{device_id}" if app else device_id,
            session_key_id,
            f_cnt,
            body.get("correlation_ids"),
            simulated=simulated,
            time=time,
        ),
        time=time,
        f_port=f_port,
        f_cnt=f_cnt,
        payload=_b64(up.get("frm_payload"), "uplink_message.frm_payload"),
        application_id=app or "",
        dev_eui=_id(ids.get("dev_eui"), "end_device_ids.dev_eui"),
        join_eui=_id(ids.get("join_eui"), "end_device_ids.join_eui"),
        dev_addr=_id(ids.get("dev_addr"), "end_device_ids.dev_addr"),
        session_key_id=session_key_id,
        simulated=simulated,
        encrypted="app_s_key" in up,
        frequency_hz=_int(settings.get("frequency"), "uplink_message.settings.frequency", I64, strings=True),
        spreading_factor=_int(
            lora.get("spreading_factor"), "uplink_message.settings.data_rate.lora.spreading_factor", I16
        ),
        bandwidth_hz=_int(lora.get("bandwidth"), "uplink_message.settings.data_rate.lora.bandwidth", I32),
        gateways=gateways,
        rx_metadata=rx,
        lns_decoded=decoded if isinstance(decoded, dict) else None,
        model=_model(version.get("brand_id"), version.get("model_id")),
        time_field=time_field,
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
    """The natural key: (application/device, session key id, f_cnt); simulated uplinks use their `as:up:`
    id. The application is part of it because one device name in two applications is two devices."""
    if session_key_id and not simulated:
        return f"tts:{device_id}:{session_key_id}:{f_cnt or 0}"
    ids = correlation if isinstance(correlation, list) else []
    for prefix in ("as:up:", "ns:uplink:"):
        for i, cid in enumerate(ids):
            if isinstance(cid, str) and cid.startswith(prefix):
                _id(cid, f"correlation_ids[{i}]")  # it becomes part of the key: bounded like one
                return f"tts:{device_id}:{cid}"
    # No session key and no correlation id (some ABP/stored messages): the uplink time is what is left.
    return f"tts:{device_id}:t:{time.isoformat()}:{f_cnt or 0}"


def _tts_gateways(value: Any) -> tuple[list[dict[str, Any]], list[Gateway]]:
    where = "uplink_message.rx_metadata"
    entries = _rx_list(value, where)
    kept: list[dict[str, Any]] = []
    by_key: dict[str, Gateway] = {}
    for i, entry in enumerate(entries):
        if "uplink_token" in entry:  # opaque, large, and only TTS can use it
            entry = entry.copy()
            del entry["uplink_token"]
        kept.append(entry)
        try:
            gw = _tts_gateway(entry)
        except EnvelopeError as exc:  # the path is built only now: the hot path formats none
            raise _within(exc, f"{where}[{i}]") from None
        prev = by_key.get(gw.key)
        # Several antennas of one gateway: keep the best signal.
        if prev is None or (gw.rssi or -1e9) > (prev.rssi or -1e9):
            by_key[gw.key] = gw
    return kept, list(by_key.values())


def _tts_gateway(entry: dict[str, Any]) -> Gateway:
    """One rx_metadata entry; errors name fields relative to the entry (see `_within`)."""
    gw_ids = _obj(entry.get("gateway_ids"), "gateway_ids")
    gw_id = _id(gw_ids.get("gateway_id"), "gateway_ids.gateway_id") or ""
    eui = _id(gw_ids.get("eui"), "gateway_ids.eui")
    pb = entry.get("packet_broker")
    if pb is not None:
        pb = _obj(pb, "packet_broker")
        net = _id(pb.get("forwarder_net_id"), "packet_broker.forwarder_net_id") or ""
        tenant = _id(pb.get("forwarder_tenant_id"), "packet_broker.forwarder_tenant_id") or ""
        fwd_eui = _id(pb.get("forwarder_gateway_eui"), "packet_broker.forwarder_gateway_eui")
        fwd_id = _id(pb.get("forwarder_gateway_id"), "packet_broker.forwarder_gateway_id")
        key = f"pb:{net}:{tenant}:{fwd_eui or fwd_id or ''}"
        eui = fwd_eui or eui
    else:
        key = f"{gw_id}:{eui or ''}"
    rssi = _real(entry["rssi"], "rssi") if "rssi" in entry else _real(entry.get("channel_rssi"), "channel_rssi")
    loc = entry.get("location")
    lat, lon = (None, None) if loc is None else _location(loc)
    return Gateway(key, gw_id, eui, pb is not None, rssi, _real(entry.get("snr", 0.0), "snr"), lat, lon)


def _within(exc: EnvelopeError, prefix: str) -> EnvelopeError:
    """`exc`, whose reason starts with a path relative to `prefix`, with the full path."""
    return EnvelopeError(f"{prefix}.{exc}", f"{prefix}.{exc.field}" if exc.field else prefix)


# --- ChirpStack v4 ----------------------------------------------------------------------------------


def parse_chirpstack(topic: str, body: dict[str, Any]) -> Message:
    info = _required_obj(body, "deviceInfo", "deviceInfo")
    dev_eui = _id(info.get("devEui"), "deviceInfo.devEui")
    event = topic.rsplit("/", 1)[-1] if topic.startswith("application/") else "up"
    if dev_eui is None:
        msg = "deviceInfo.devEui is missing: not a ChirpStack event"
        raise EnvelopeError(msg, "deviceInfo.devEui")
    device_id = dev_eui.lower()
    app = _id(info.get("applicationId"), "deviceInfo.applicationId") or ""
    time = parse_time(body.get("time"), "time")
    if event != "up":
        if event in CHIRPSTACK_OTHER_EVENTS:
            return Other("chirpstack", event, device_id, time, app)
        msg = f"unknown ChirpStack event {_show(event)}"
        raise EnvelopeError(msg)
    dedup = _id(body.get("deduplicationId"), "deduplicationId")
    if dedup is None:
        msg = "ChirpStack uplink without deduplicationId"
        raise EnvelopeError(msg, "deduplicationId")
    rx = _rx_list(body.get("rxInfo"), "rxInfo")
    time_field = "time"
    if time is None:  # `time` is always set by ChirpStack; fall back to the NS time of the first gateway
        for i, r in enumerate(rx):
            time = parse_time(r.get("nsTime"), f"rxInfo[{i}].nsTime")
            if time is not None:
                time_field = f"rxInfo[{i}].nsTime"
                break
    if time is None:
        msg = "ChirpStack uplink has no time and no rxInfo[].nsTime"
        raise EnvelopeError(msg, "time")
    tx = _obj(body.get("txInfo"), "txInfo")
    modulation = _obj(tx.get("modulation"), "txInfo.modulation")
    lora = _obj(modulation.get("lora"), "txInfo.modulation.lora")
    tags = _obj(info.get("tags"), "deviceInfo.tags")
    gateways = []
    for i, r in enumerate(rx):
        try:
            gw_id = _id(r.get("gatewayId"), "gatewayId") or ""
            rssi, snr = _real(r.get("rssi"), "rssi"), _real(r.get("snr", 0.0), "snr")
        except EnvelopeError as exc:
            raise _within(exc, f"rxInfo[{i}]") from None
        loc = r.get("location")
        lat, lon = (None, None) if loc is None else _location(loc)
        gateways.append(Gateway(f"{gw_id}:{gw_id}", gw_id, gw_id or None, False, rssi, snr, lat, lon))
    obj = body.get("object")
    return Uplink(
        source="chirpstack",
        device_id=device_id,
        uplink_key=f"cs:{dedup}",
        time=time,
        f_port=_int(body.get("fPort"), "fPort", U8) or 0,
        f_cnt=_int(body.get("fCnt", 0), "fCnt", U32, strings=True),
        payload=_b64(body.get("data"), "data"),
        application_id=app,
        dev_eui=device_id,
        dev_addr=_id(body.get("devAddr"), "devAddr"),
        encrypted="joinServerContext" in body,
        frequency_hz=_int(tx.get("frequency"), "txInfo.frequency", I64, strings=True),
        spreading_factor=_int(lora.get("spreadingFactor"), "txInfo.modulation.lora.spreadingFactor", I16),
        bandwidth_hz=_int(lora.get("bandwidth"), "txInfo.modulation.lora.bandwidth", I32),
        gateways=gateways,
        rx_metadata=[{k: v for k, v in r.items() if k != "context"} for r in rx],
        lns_decoded=obj if isinstance(obj, dict) else None,
        model=_model(tags.get("brand_id"), tags.get("model_id")),
        time_field=time_field,
        rx_field="rxInfo",
        decoded_field="object",
    )
