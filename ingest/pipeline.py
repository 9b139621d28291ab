"""One message in, one outcome out: a record to store, a dead letter, or a skip.

A chain of guard clauses: JSON, envelope, decoder choice, decode, normalise, range check. Every
rejection becomes a `DeadLetter` with its stage, a reason and the raw bytes; `process` itself never
raises, so one bad message can never stop the ingester.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

import decoders
from ingest.envelope import EnvelopeError, Other, Uplink, parse
from store.writer import (
    READING_COLUMNS,
    READING_INDEX,
    DeadLetter,
    DeviceSeen,
    UplinkRecord,
    to_json,
)

log = logging.getLogger(__name__)


def _converter(unit: str) -> Callable[[float], Any]:
    if unit == "bool":
        return bool
    if unit in {"count", "level"}:
        return int
    return float


#: name -> (column index, type conversion, physical range): one lookup per measurement on the hot path.
_COLUMNS: dict[str, tuple[int, Callable[[float], Any], tuple[float, float]]] = {
    name: (READING_INDEX[name], _converter(unit), decoders.PHYSICAL_RANGES.get(name, (-math.inf, math.inf)))
    for name, (unit, _) in decoders.VOCABULARY.items()
    if name in READING_INDEX
}


@dataclass(frozen=True, slots=True)
class Skipped:
    """A well-formed message that is not a data uplink (join accept, downlink ack, ...)."""

    kind: str


Outcome = UplinkRecord | DeadLetter | Skipped


class Processor:
    """Turns raw MQTT messages into store records. `model_of(device_id)` is the registry lookup."""

    def __init__(self, model_of: Callable[[str], str | None]) -> None:
        self.model_of = model_of

    def process(self, topic: str, raw: bytes, received_at: datetime) -> Outcome:
        try:
            return self._process(topic, raw, received_at)
        except Exception as exc:  # a bug must not stop ingest: keep the message and say what happened
            log.exception("ingest_unexpected_error", extra={"topic": topic})
            return DeadLetter(
                received_at,
                "internal",
                f"unexpected {type(exc).__name__}: {exc}",
                type(exc).__name__,
                topic,
                None,
                raw,
            )

    def _process(self, topic: str, raw: bytes, received_at: datetime) -> Outcome:
        def dead(stage: str, reason: str, exc: BaseException | None = None, device: str | None = None) -> DeadLetter:
            log.warning(
                "ingest_dead_letter",
                extra={"stage": stage, "reason": reason, "topic": topic, "payload_hex": raw[:128].hex()},
            )
            return DeadLetter(received_at, stage, reason, type(exc).__name__ if exc else None, topic, device, raw)

        if raw[:1] not in (b"{", b"[", b" ", b"\n", b"\r", b"\t"):
            return dead("json", "body is not JSON (binary protobuf? set the LNS integration to JSON)")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return dead("json", f"invalid JSON: {exc}", exc)
        if not isinstance(body, dict):
            return dead("json", f"JSON body is a {type(body).__name__}, expected an object")
        try:
            msg = parse(topic, body)
        except EnvelopeError as exc:
            return dead("envelope", str(exc), exc)
        if isinstance(msg, Other):
            return Skipped(msg.kind)
        return self._uplink(msg, topic, raw, received_at, dead)

    def _uplink(
        self, up: Uplink, topic: str, raw: bytes, received_at: datetime, dead: Callable[..., DeadLetter]
    ) -> Outcome:
        model = self.model_of(up.device_id) or up.model
        decoded: dict[str, Any] | None = None
        decoder: str | None = None
        normalized = decoders.Normalized()
        if up.mac_only or not up.payload:
            pass  # alive, but no reading (MAC commands only, or an empty payload)
        elif up.encrypted:
            decoder = "encrypted"  # skip_payload_crypto / no AppSKey: ciphertext is not sensor data
        else:
            codec = _codec(model)
            if codec is not None:
                try:
                    decoded = decoders.decode(codec.device, up.f_port, up.payload)
                    normalized = decoders.normalize(codec.device, decoded)
                except decoders.DecodeError as exc:
                    return dead("decode", str(exc), exc, up.device_id)
                decoder = f"lorawatch:{codec.device}"
            elif up.lns_decoded is not None:
                decoded, decoder = up.lns_decoded, "lns"  # a payload format we do not know: kept, not normalised
        rows: dict[datetime, list[Any]] = {}
        refused = [(m, f"{m.name} = {m.value} is outside the device's physical range") for m in normalized.rejected]
        width = len(READING_COLUMNS)
        for m in normalized.measurements:
            column = _COLUMNS.get(m.name)
            if column is None:
                continue
            idx, convert, (low, high) = column
            if not low <= m.value <= high:
                refused.append((m, f"{m.name} = {m.value} is outside the physical range {low}..{high}"))
                continue
            when = m.time or up.time
            row = rows.get(when)
            if row is None:
                row = rows[when] = [None] * width
            row[idx] = convert(m.value)
        events = []
        for e in normalized.events:
            canonical = json.dumps(e.attrs, sort_keys=True, default=str)
            key = hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()
            events.append((e.time or up.time, up.device_id, e.kind, key, canonical, up.uplink_key))
        # Our own decoding is a pure function of frm_payload and the decoder named in `decoder`, so it is
        # not stored twice; only the LNS's decoded payload (which we cannot recompute) is kept.
        stored_decoded = to_json(decoded) if decoder == "lns" else None
        if up.simulated:  # TTS "simulate uplink": keep the message, but it must never drive alerts
            rows, events = {}, []
        uplink = (
            up.time,
            up.uplink_key,
            up.device_id,
            up.source,
            up.simulated,
            up.f_port,
            up.f_cnt,
            up.payload or None,
            up.session_key_id,
            up.dev_addr,
            up.frequency_hz,
            up.spreading_factor,
            up.bandwidth_hz,
            up.rssi,
            up.snr,
            len(up.gateways),
            stored_decoded,
            decoder,
            to_json(up.rx_metadata) if up.rx_metadata else None,
        )
        return UplinkRecord(
            uplink=uplink,
            device=DeviceSeen(
                up.device_id,
                up.source,
                up.time,
                up.application_id,
                up.dev_eui,
                up.join_eui,
                up.dev_addr,
                model,
            ),
            readings=[(t, up.device_id, values) for t, values in rows.items()],
            events=events,
            gateways=up.gateways,
            topic=topic,
            raw=raw,
            dead_letters=[
                dead("range", f"{reason}; the rest of the uplink was stored", None, up.device_id)
                for _, reason in refused
            ],
        )


def _codec(model: str | None) -> decoders.Codec | None:
    if model is None:
        return None
    try:
        return decoders.get(model)
    except decoders.DecodeError:
        return None
