"""One message in, one outcome out: a record to store, a dead letter, or a skip.

A chain of guard clauses: size, topic (allowed applications), JSON, JSON-safety, envelope (types,
column bounds, topic against body, time bounds), decoder choice, decode, normalise, range check.
Every rejection becomes a `DeadLetter` with its stage, a reason, the dotted JSON path of the field to
blame (`field`) and the raw bytes; `process` itself never raises, so one bad message can never stop
the ingester.

The point of the checks is that nothing the database would refuse (which would cost the batch a
bisection and the message its row) and nothing it would wrap or change silently (a counter past
2**32, a float past `real`, NUL in text, an integer JSON parsers turn into a float) gets past here.
They are cheap on the hot path: isinstance and len per field, and two C-level scans of the raw bytes
(a backslash, then `\u0000`; digits translated to find a run of 19) that decide whether the rare deep
walks (NUL, integers beyond 64 bits) are needed at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

import decoders
from ingest.envelope import MAX_REAL, EnvelopeError, Other, Uplink, parse
from store.records import (
    READING_COLUMNS,
    READING_INDEX,
    DeadLetter,
    DeviceSeen,
    EventRow,
    ReadingRow,
    UplinkRecord,
    UplinkRow,
)

__all__ = ["KEEP_BYTES", "TIME_FLOOR", "Limits", "Outcome", "Processor", "Skipped", "topic_ids"]

log = logging.getLogger(__name__)

#: LoRaWAN 1.0 dates from 2015: a time before this is a clock that was never set, not a measurement.
TIME_FLOOR = datetime(2015, 1, 1, tzinfo=UTC)
#: How much of an oversized message is kept in its dead letter.
KEEP_BYTES = 65_536


@dataclass(frozen=True, slots=True)
class Limits:
    """What the ingester accepts. Times are bounded against our own receive time, not the sender's."""

    #: a bigger message is refused (stage `size`) before it is parsed
    max_message_bytes: int = 262_144
    #: a time later than the receive time plus this is refused (clock skew allowance)
    max_future: timedelta = timedelta(minutes=10)
    #: a time earlier than the receive time minus this is refused; None: only TIME_FLOOR applies
    max_age: timedelta | None = None
    #: the application ids accepted (LORAWATCH_INGEST_APPLICATIONS); None: any
    applications: frozenset[str] | None = None


def _converter(unit: str) -> Callable[[float], Any]:
    if unit == "bool":
        return bool
    if unit in {"count", "level"}:
        return int
    return float


def _bounds(name: str, unit: str) -> tuple[float, float]:
    """A measurement's accepted range: its physical one, else 0..1 for a flag and a finite bound for
    anything else, so a NaN or infinity can never become a stored True or a `real` infinity."""
    found = decoders.PHYSICAL_RANGES.get(name)
    if found is not None:
        return found
    return (0, 1) if unit == "bool" else (-MAX_REAL, MAX_REAL)


#: name -> (column index, type conversion, physical range): one lookup per measurement on the hot path.
_COLUMNS: dict[str, tuple[int, Callable[[float], Any], tuple[float, float]]] = {
    name: (READING_INDEX[name], _converter(unit), _bounds(name, unit))
    for name, (unit, _) in decoders.VOCABULARY.items()
    if name in READING_INDEX
}

_JSON_START = (b"{", b"[", b" ", b"\n", b"\r", b"\t")
#: Maps every ASCII digit to "9" and every other byte to "."; a run of 19 nines in the translation is a
#: run of 19 digits in the message. One C-level pass (a regex is about ten times slower).
_DIGITS_TO_NINES = bytes(0x39 if 0x30 <= b <= 0x39 else 0x2E for b in range(256))
_LONG_DIGIT_RUN = b"9" * 19  # -2**63 has 19 digits, 2**64 has 20: shorter integers are exact
#: Bytes that may stand between a JSON number's first digit and what precedes the value (`:`, `[`, `,`).
_NUMBER_LEAD = b" \t\n\r-"
_INT_LOW, _INT_HIGH = -(2**63), 2**64 - 1  # what orjson parses to an exact int


#: Builds a NamedTuple row from a tuple in C: a NamedTuple's own `__new__` is Python code, about twice
#: the cost, and a row is built per uplink, reading and event.
_row = tuple.__new__


def _to_json(value: Any) -> str:
    """jsonb text for COPY. orjson: the hot path serialises two documents per uplink."""
    return orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class Skipped:
    """A well-formed message that is not a data uplink (join accept, downlink ack, ...)."""

    kind: str


Outcome = UplinkRecord | DeadLetter | Skipped


def topic_ids(topic: str) -> tuple[str, str, str] | None:
    """(source, application id, device id) named by a topic of a known shape, else None.

    TTS: `v3/{application_id}[@{tenant}]/devices/{device_id}/...`; ChirpStack:
    `application/{applicationId}/device/{devEui}/event/{event}`. Other shapes (test topics, custom
    bridges) name nothing and are not checked."""
    parts = topic.split("/")
    if len(parts) >= 5 and parts[0] == "v3" and parts[2] == "devices":
        return "tts", parts[1].partition("@")[0], parts[3]
    if len(parts) == 6 and parts[0] == "application" and parts[2] == "device" and parts[4] == "event":
        return "chirpstack", parts[1], parts[3]
    return None


class Processor:
    """Turns raw MQTT messages into store records.

    `model_of(application_id, device_id)` is the registry lookup ("brand/model" or None);
    `limits` is what is accepted (sizes, times, applications)."""

    def __init__(self, model_of: Callable[[str, str], str | None], limits: Limits = Limits()) -> None:
        self.model_of = model_of
        self.limits = limits

    def process(self, topic: str, raw: bytes, received_at: datetime) -> Outcome:
        """The outcome of one message received at `received_at` (our clock). Never raises."""
        try:
            return self._process(topic, raw, received_at)
        except Exception as exc:  # a bug must not stop ingest: keep the message and say what happened
            log.exception("ingest_unexpected_error", extra={"topic": topic})
            return DeadLetter(
                received_at,
                "internal",
                f"unexpected {type(exc).__name__}: {exc}"[:2000],
                type(exc).__name__,
                topic,
                None,
                raw[:KEEP_BYTES] if len(raw) > self.limits.max_message_bytes else raw,
            )

    def _process(self, topic: str, raw: bytes, received_at: datetime) -> Outcome:
        def dead(
            stage: str,
            reason: str,
            exc: BaseException | None = None,
            device: str | None = None,
            field: str | None = None,
        ) -> DeadLetter:
            log.warning(
                "ingest_dead_letter",
                extra={"stage": stage, "reason": reason, "topic": topic, "payload_hex": raw[:128].hex()},
            )
            return DeadLetter(
                received_at, stage, reason, type(exc).__name__ if exc else None, topic, device, raw, field
            )

        limits = self.limits
        if len(raw) > limits.max_message_bytes:
            size = len(raw)
            raw = raw[:KEEP_BYTES]
            return dead(
                "size",
                f"message of {size} bytes is over the limit of {limits.max_message_bytes} bytes "
                f"(LORAWATCH_INGEST_MAX_MESSAGE_BYTES); only its first {len(raw)} bytes are kept",
            )
        allowed = limits.applications
        if allowed is not None:
            named = topic_ids(topic)
            if named is not None and named[1] not in allowed:
                return dead("topic", _not_allowed(named[1]), device=named[2])  # refused before parsing
        if raw[:1] not in _JSON_START:
            return dead("json", "body is not JSON (binary protobuf? set the LNS integration to JSON)")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:  # also 1e400 (infinity), lone surrogates, nesting > 1024
            return dead("json", f"invalid JSON: {exc}", exc)
        if not isinstance(body, dict):
            return dead("json", f"JSON body is a {type(body).__name__}, expected an object")
        # A JSON escape is the only way NUL gets into a parsed string (a raw 0x00 is invalid JSON); LNS
        # bodies rarely hold a backslash at all, and one byte is found by memchr, three times faster.
        if b"\\" in raw and b"\\u0000" in raw:
            path = _nul_path(body)
            if path is not None:
                reason = f"{path or 'a key'} contains NUL (\\u0000), which text and jsonb columns cannot hold"
                return dead("envelope", reason, field=path or None)
        if _may_hold_a_long_integer(raw):
            try:
                path = _inexact_int_path(raw)
            except (RecursionError, ValueError) as exc:  # orjson took it (nesting <= 1024), Python's could not
                return dead("json", f"JSON that cannot be checked for inexact integers: {exc}", exc)
            if path is not None:
                reason = f"{path} is an integer outside the 64-bit range: it cannot be kept exactly"
                return dead("envelope", reason, field=path)
        try:
            msg = parse(topic, body)
        except EnvelopeError as exc:
            return dead("envelope", str(exc), exc, field=exc.field)
        if isinstance(msg, Other):
            if allowed is not None:
                named = topic_ids(topic)
                app = msg.application_id or (named[1] if named else "")
                if app not in allowed:
                    return dead("topic", _not_allowed(app), device=msg.device_id)
            return Skipped(msg.kind)
        named = topic_ids(topic)
        if named is not None and (named[2] != msg.device_id or named[1] != msg.application_id):
            mismatch = _topic_mismatch(named, msg)  # or only an EUI in upper case, or no app in the body
            if mismatch is not None:
                return dead("envelope", mismatch[0], device=msg.device_id, field=mismatch[1])
            if not msg.application_id:  # the body names no application: the topic's is the only one
                msg.application_id = named[1]
        if allowed is not None and msg.application_id not in allowed:
            return dead("topic", _not_allowed(msg.application_id), device=msg.device_id)
        low = TIME_FLOOR if limits.max_age is None else max(TIME_FLOOR, received_at - limits.max_age)
        high = received_at + limits.max_future
        if not low <= msg.time <= high:
            reason = f"{msg.time_field} = {msg.time.isoformat()} is {_outside(msg.time, low, high)}"
            return dead("envelope", reason, device=msg.device_id, field=msg.time_field)
        return self._uplink(msg, topic, raw, low, high, dead)

    def _uplink(
        self,
        up: Uplink,
        topic: str,
        raw: bytes,
        low: datetime,
        high: datetime,
        dead: Callable[..., DeadLetter],
    ) -> Outcome:
        model = self.model_of(up.application_id, up.device_id) or up.model
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
        # Our own decoding is a pure function of frm_payload and the decoder named in `decoder`, so it is
        # not stored twice; only the LNS's decoded payload (which we cannot recompute) is kept. orjson
        # refuses what jsonb could not take back either (nesting past 254 levels).
        try:
            stored_decoded = _to_json(decoded) if decoder == "lns" else None
        except orjson.JSONEncodeError as exc:
            return dead("envelope", f"{up.decoded_field} cannot be stored: {exc}", exc, up.device_id, up.decoded_field)
        try:
            rx_metadata = _to_json(up.rx_metadata) if up.rx_metadata else None
        except orjson.JSONEncodeError as exc:
            return dead("envelope", f"{up.rx_field} cannot be stored: {exc}", exc, up.device_id, up.rx_field)
        # field -> reasons of the values refused; one dead letter per field (their key includes it).
        refused: dict[str, list[str]] = {}
        for m in normalized.rejected:
            refused.setdefault(m.name, []).append(f"{m.name} = {m.value} is outside the device's physical range")
        rows: dict[datetime, list[Any]] = {}
        width = len(READING_COLUMNS)
        for m in normalized.measurements:
            column = _COLUMNS.get(m.name)
            if column is None:
                continue
            idx, convert, (lo, hi) = column
            if not lo <= m.value <= hi:  # also refuses NaN
                refused.setdefault(m.name, []).append(f"{m.name} = {m.value} is outside the physical range {lo}..{hi}")
                continue
            when = m.time
            if when is None:
                when = up.time
            elif not low <= when <= high:  # the device's own clock (a history record)
                refused.setdefault(f"{m.name}.time", []).append(
                    f"{m.name} = {m.value} at {when.isoformat()} (device clock) is {_outside(when, low, high)}"
                )
                continue
            row = rows.get(when)
            if row is None:
                row = rows[when] = [None] * width
            row[idx] = convert(m.value)
        events: list[EventRow] = []
        for e in normalized.events:
            when = e.time
            if when is None:
                when = up.time
            elif not low <= when <= high:
                refused.setdefault(f"event.{e.kind}.time", []).append(
                    f"event {e.kind} at {when.isoformat()} (device clock) is {_outside(when, low, high)}"
                )
                continue
            try:
                canonical = json.dumps(e.attrs, sort_keys=True, default=str, allow_nan=False)
            except (ValueError, TypeError, RecursionError) as exc:
                refused.setdefault(f"event.{e.kind}.attrs", []).append(f"event {e.kind} attributes: {exc}")
                continue
            if "\\u0000" in canonical:
                refused.setdefault(f"event.{e.kind}.attrs", []).append(f"event {e.kind} attributes contain NUL")
                continue
            key = hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()
            events.append(_row(EventRow, (when, e.kind, key, canonical, up.uplink_key)))
        if up.simulated:  # TTS "simulate uplink": keep the message, but it must never drive alerts
            rows, events = {}, []
        uplink = _row(
            UplinkRow,
            (
                up.time,
                up.uplink_key,
                up.application_id,
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
                rx_metadata,
            ),
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
            readings=[_row(ReadingRow, (t, values)) for t, values in rows.items()],
            events=events,
            gateways=up.gateways,
            topic=topic,
            raw=raw,
            dead_letters=[
                dead("range", _refusal(reasons), None, up.device_id, name) for name, reasons in refused.items()
            ],
        )


def _refusal(reasons: list[str]) -> str:
    if len(reasons) == 1:
        return f"{reasons[0]}; the rest of the uplink was stored"
    shown = "; ".join(reasons[:5]) + ("; ..." if len(reasons) > 5 else "")
    return f"{len(reasons)} values refused: {shown}; the rest of the uplink was stored"


def _show(value: str) -> str:
    """A name for a reason: repr (NUL and control characters escaped), never unbounded."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _not_allowed(app: str) -> str:
    shown = _show(app) if app else "no application"
    return f"application {shown} is not accepted: LORAWATCH_INGEST_APPLICATIONS does not list it"


def _outside(when: datetime, low: datetime, high: datetime) -> str:
    if when > high:
        return f"later than {high.isoformat()} (receive time + max_future)"
    bound = "TIME_FLOOR: a clock never set" if low == TIME_FLOOR else "receive time - max_age"
    return f"earlier than {low.isoformat()} ({bound})"


def _topic_mismatch(named: tuple[str, str, str], up: Uplink) -> tuple[str, str] | None:
    """(reason, field) when a topic of a known shape names another device or application than the
    body: a misrouted or forged message, which must not be stored under either identity."""
    source, app, device = named
    if source == "tts":
        device_field, app_field = "end_device_ids.device_id", "end_device_ids.application_ids.application_id"
        same_device = device == up.device_id
    else:
        device_field, app_field = "deviceInfo.devEui", "deviceInfo.applicationId"
        same_device = device.lower() == up.device_id
    if not same_device:
        return f"topic names device {_show(device)} but {device_field} is {_show(up.device_id)}", device_field
    if up.application_id and app != up.application_id:
        return f"topic names application {_show(app)} but {app_field} is {_show(up.application_id)}", app_field
    return None


def _path(parent: str, key: str) -> str:
    if "\x00" in key:
        key = key.replace("\x00", "\\u0000")
    path = f"{parent}.{key}" if parent else key
    return path if len(path) <= 256 else path[:253] + "..."


def _nul_path(body: dict[str, Any]) -> str | None:
    """The path of the first string or key (document order) that contains NUL, else None.

    Iterative: a body may be nested up to orjson's 1024 levels, past Python's recursion limit."""
    stack: list[tuple[Any, str]] = [(body, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return path
        elif isinstance(value, dict):
            items = list(value.items())
            for key, item in reversed(items):
                if "\x00" in key:
                    return _path(path, key)
                stack.append((item, _path(path, key)))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in reversed(list(enumerate(value))))
    return None


class _Huge:
    """Stands for an integer literal too long to convert (Python caps int() at 4300 digits)."""


_HUGE = _Huge()


def _may_hold_a_long_integer(raw: bytes) -> bool:
    """Whether `raw` may hold an integer literal of 19 digits or more: a run of 19 digits that starts
    where a JSON value can (after `:`, `[` or `,`, whitespace and a sign).

    A superset (a string "x:1234567890123456789" passes too; the exact check then clears it), cheap
    enough for every message: one C-level translation, and Python work only per run of 19 digits, so
    ids made of digits inside strings (correlation ids, decimal EUIs) do not send every message down
    the slow path."""
    nines = raw.translate(_DIGITS_TO_NINES)
    at = nines.find(_LONG_DIGIT_RUN)
    while at != -1:
        lead = raw[max(0, at - 64) : at].rstrip(_NUMBER_LEAD)
        if lead[-1:] in (b":", b"[", b",") or (not lead and at > 64):  # or more padding than we look at
            return True
        end = nines.find(b".", at)
        if end == -1:
            return False
        at = nines.find(_LONG_DIGIT_RUN, end)
    return False


def _exact_int(text: str) -> int | _Huge:
    return int(text) if len(text) <= 21 else _HUGE


def _inexact_int_path(raw: bytes) -> str | None:
    """The path of the first integer that orjson would have turned into a float (outside -2**63 ..
    2**64-1), else None. Python's parser keeps integers exact; it runs only when the message has a run
    of 19 digits, so almost never."""
    stack: list[tuple[Any, str]] = [(json.loads(raw, parse_int=_exact_int), "")]
    while stack:
        value, path = stack.pop()
        if value is _HUGE or (type(value) is int and not _INT_LOW <= value <= _INT_HIGH):
            return path
        if isinstance(value, dict):
            stack.extend((item, _path(path, key)) for key, item in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in reversed(list(enumerate(value))))
    return None


def _codec(model: str | None) -> decoders.Codec | None:
    if model is None:
        return None
    try:
        return decoders.get(model)
    except decoders.DecodeError:
        return None
