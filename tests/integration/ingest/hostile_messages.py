"""Hostile LNS messages for the trust-boundary tests, each with what the spec says must become of it.

A `Case` is one MQTT message (topic + raw bytes) plus the expected outcome: the dead-letter stage and
field where the spec names them, and whether the spec allows the message to be stored with the bad
value refused (a `range` dead letter inside a stored uplink) instead of being dead-lettered whole.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.lns import LDDS75_FRAME, example, raw, rfc3339, topic_for, tts_uplink

KIB = 1024
DEFAULT_MAX_BYTES = 256 * KIB

#: settings.data_rate.lora, the radio block of a TTS uplink
LORA = ("uplink_message", "settings", "data_rate", "lora")
F_CNT = ("uplink_message", "f_cnt")
TIME = ("uplink_message", "received_at")


@dataclass(frozen=True)
class Case:
    """One hostile message and what must become of it."""

    kind: str
    topic: str
    raw: bytes
    #: expected dead_letters.stage (None: the spec does not say which stage)
    stage: str | None = None
    #: expected dead_letters.field as a dotted path (None: the spec does not name one)
    field: str | None = None
    #: the uplink may instead be stored with this uplinks column NULL plus a `range` dead letter
    partial_column: str | None = None
    #: body device whose devices.last_seen this message must never move (None: not applicable)
    device: str | None = None


def norm_field(name: str | None) -> str:
    """`rx_metadata[0].rssi` and `rx_metadata.0.rssi` are the same path."""
    return re.sub(r"\[(\d+)\]", r".\1", name or "")


def field_matches(actual: str | None, expected: str) -> bool:
    """The dead letter names `expected` (exactly, or a path inside it: `decoded_payload.note`)."""
    a, e = norm_field(actual), norm_field(expected)
    return a == e or a.startswith(e + ".")


def set_path(body: Any, path: tuple[str | int, ...], value: Any) -> Any:
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


def get_path(body: Any, path: tuple[str | int, ...]) -> Any:
    node = body
    for key in path:
        node = node[key]
    return node


def ldds75(distance_mm: int) -> bytes:
    """A Dragino LDDS75 frame: 3.387 V, the given distance, no interrupt, no probe, sensor ok."""
    return LDDS75_FRAME[:2] + distance_mm.to_bytes(2, "big") + LDDS75_FRAME[4:]


def random_text(rng: random.Random, n: int) -> str:
    """`n` random characters that are legal inside an MQTT topic level (no `/`, `+`, `#`, NUL or
    surrogates) and incompressible, so a btree index entry cannot shrink them under its size limit."""
    out: list[str] = []
    while len(out) < n:
        cp = rng.choice((rng.randint(0x21, 0x7E), rng.randint(0xA1, 0xD7FF), rng.randint(0xE000, 0xFFFD)))
        # Mosquitto refuses topics with non-characters (U+FDD0..U+FDEF, U+xFFFE/F) and controls
        if chr(cp) not in "/+#" and not 0xFDD0 <= cp <= 0xFDEF:
            out.append(chr(cp))
    return "".join(out)


def random_b64(rng: random.Random, n: int) -> str:
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(rng.choice(alphabet) for _ in range(n))


def body_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _uplink(device: str, app: str, f_cnt: int, **kw: Any) -> dict[str, Any]:
    return tts_uplink(device, f_cnt=f_cnt, app=app, payload=ldds75(1000 + f_cnt % 3000), **kw)


def _tts_topic(app: str, device: str) -> str:
    return f"v3/{app}@ttn/devices/{device}/up"


# --- the spec's named hostile values ---------------------------------------------------------------


def crash_cases(app: str, rng: random.Random, n: int = 0) -> list[Case]:
    """Values the database would refuse. `n` makes bytes and devices unique across calls."""
    cases: list[Case] = []

    def add(kind: str, mutate: Any, field: str, device: str | None = None, topic_device: str | None = None) -> None:
        dev = device or f"bad-{kind}-{n}"
        body = _uplink(dev, app, 500_000 + n)
        mutate(body)
        cases.append(Case(kind, _tts_topic(app, topic_device or dev), body_bytes(body), field=field))

    add("f_cnt_2e63", lambda b: set_path(b, F_CNT, 9223372036854775808), "uplink_message.f_cnt")
    add("f_cnt_1e30", lambda b: set_path(b, F_CNT, 1e30), "uplink_message.f_cnt")
    add(
        "frequency_20_digits",
        lambda b: set_path(b, ("uplink_message", "settings", "frequency"), "12345678901234567890"),
        "uplink_message.settings.frequency",
    )
    # MQTT topics cannot carry NUL: the topic names the device without it.
    add(
        "nul_device_id",
        lambda b: set_path(b, ("end_device_ids", "device_id"), f"bad-nul\u0000{n}"),
        "end_device_ids.device_id",
        topic_device=f"bad-nul{n}",
    )
    add(
        "nul_decoded_string",
        lambda b: set_path(b, ("uplink_message", "decoded_payload"), {"note": f"a\u0000b{n}", "level_mm": 300.0}),
        "uplink_message.decoded_payload",
    )
    long_dev = random_text(rng, 5000)
    add("long_device_id", lambda b: None, "end_device_ids.device_id", device=long_dev)
    add(
        "long_session_key_id",
        lambda b: set_path(b, ("uplink_message", "session_key_id"), random_b64(rng, 5000)),
        "uplink_message.session_key_id",
    )
    return cases


def range_cases(app: str, n: int = 0) -> list[Case]:
    """Numbers that fit JSON but no honest column: they must never be stored wrapped."""
    cases: list[Case] = []

    def add(kind: str, path: tuple[str | int, ...], value: Any, partial: str | None) -> None:
        dev = f"bad-{kind}-{n}"
        body = set_path(_uplink(dev, app, 600_000 + n), path, value)
        cases.append(
            Case(kind, _tts_topic(app, dev), body_bytes(body), field=".".join(map(str, path)), partial_column=partial)
        )

    add("sf_65543", (*LORA, "spreading_factor"), 65543, "spreading_factor")
    add("sf_2e33", (*LORA, "spreading_factor"), 2**33 + 9, "spreading_factor")
    add("bw_2e40", (*LORA, "bandwidth"), 2**40 + 125000, "bandwidth_hz")
    add("rssi_1e308", ("uplink_message", "rx_metadata", 0, "rssi"), 1e308, "rssi_dbm")
    add("f_cnt_negative", F_CNT, -5, None)
    add("f_cnt_above_2e32", F_CNT, 2**32 + 5, None)
    return cases


def date_cases(app: str, device: str, now: datetime, n: int = 0) -> list[Case]:
    """Uplinks dated where no uplink can be, for a real device whose last_seen they must not move."""
    cases = []
    for kind, when in (
        ("time_9999", "9999-12-31T23:59:59Z"),
        ("time_0001", "0001-01-02T00:00:00Z"),
        ("time_future_1h", rfc3339(now + timedelta(hours=1, minutes=n % 60))),
        ("time_2014", "2014-06-01T12:00:00Z"),
    ):
        body = _uplink(device, app, 700_000 + n)
        body["received_at"] = when
        body["uplink_message"]["received_at"] = when
        cases.append(Case(kind, _tts_topic(app, device), body_bytes(body), device=device))
    return cases


def envelope_cases(app: str, n: int = 0) -> list[Case]:
    cases = []
    dev = f"bad-simulated-string-{n}"
    body = _uplink(dev, app, 800_000 + n)
    body["simulated"] = "false"
    cases.append(Case("simulated_string", _tts_topic(app, dev), body_bytes(body), stage="envelope", field="simulated"))
    dev = f"bad-uplink-null-{n}"
    body = _uplink(dev, app, 800_000 + n)
    body["uplink_message"] = None
    cases.append(
        Case("uplink_message_null", _tts_topic(app, dev), body_bytes(body), stage="envelope", field="uplink_message")
    )
    return cases


def mismatch_case(app: str, n: int = 0) -> Case:
    body = _uplink(f"bad-body-{n}", app, 900_000 + n)
    return Case("topic_mismatch", _tts_topic(app, f"bad-topic-{n}"), body_bytes(body), field="end_device_ids.device_id")


def oversize_case(app: str, size: int, n: int = 0) -> Case:
    """A well-formed uplink padded (in a key the ingester must ignore) to `size` bytes."""
    dev = f"bad-oversize-{n}"
    body = _uplink(dev, app, 950_000 + n)
    body["padding"] = ""
    base = len(body_bytes(body))
    body["padding"] = "x" * (size - base)
    data = body_bytes(body)
    assert len(data) == size
    return Case("oversize", _tts_topic(app, dev), data, stage="size")


def wrong_type_cases(app: str, n: int = 0) -> list[Case]:
    """Known fields with a type no LNS sends, where no honest reading of the message exists."""
    cases = []
    for kind, path, value in (
        ("f_cnt_object", F_CNT, {"value": 7}),
        ("f_port_list", ("uplink_message", "f_port"), [2]),
        ("frm_payload_number", ("uplink_message", "frm_payload"), 12345),
        ("end_device_ids_list", ("end_device_ids",), ["x"]),
        ("application_ids_string", ("end_device_ids", "application_ids"), "x"),
        ("uplink_message_string", ("uplink_message",), "x" * 64),
        ("uplink_message_list", ("uplink_message",), [1, 2, 3]),
        ("uplink_message_number", ("uplink_message",), 5),
        ("uplink_message_true", ("uplink_message",), True),
    ):
        dev = f"bad-{kind}-{n}"
        body = set_path(_uplink(dev, app, 960_000 + n), path, value)
        cases.append(Case(kind, _tts_topic(app, dev), body_bytes(body)))
    return cases


# --- junk that is not an LNS message at all -------------------------------------------------------


def junk_cases(app: str, rng: random.Random, n: int) -> Iterator[Case]:
    """Message `n` of a stream of non-messages: random bytes, nesting, NULs, empties, scalars, ..."""
    topic = _tts_topic(app, f"bad-junk-{n}")
    pick = n % 10
    if pick in (0, 1, 2):
        yield Case("random_bytes", topic, rng.randbytes(rng.randint(1, 600)))
    elif pick == 3:
        yield Case("nul_bytes", topic, b"\x00" * (1 + n % 300))
    elif pick == 4:
        yield Case("empty", topic, b"")
    elif pick == 5:
        scalar = rng.choice(
            [f"[{n}, 1]", str(n), f'"s{n}"', "null", "true", "false", "[]", f'[{{"uplink_message": {n}}}]']
        )
        yield Case("json_scalar_or_array", topic, scalar.encode())
    elif pick == 6:
        # a raw NUL and a raw newline inside a JSON string are not JSON
        body = _uplink(f"bad-junk-{n}", app, 970_000 + n)
        data = raw(body).replace(f'"bad-junk-{n}"'.encode(), f'"bad-junk-\x00{n}"'.encode())
        assert b"\x00" in data
        yield Case("raw_nul_in_json", topic, data)
    elif pick == 7:
        # invalid UTF-8 inside the device id (the topic names it without the bad byte)
        body = _uplink(f"bad-junk-{n}", app, 970_000 + n)
        data = raw(body).replace(f'"bad-junk-{n}"'.encode(), f'"bad-junk-\xff\xfe{n}"'.encode("latin-1"))
        assert b"\xff\xfe" in data
        yield Case("non_utf8", topic, data)
    elif pick == 8:
        body = _uplink(f"bad-junk-{n}", app, 970_000 + n)
        data = raw(body)
        yield Case("truncated_json", topic, data[: rng.randint(1, len(data) - 2)])
    else:
        yield Case("binary_protobuf_like", topic, b"\x0a\x24" + rng.randbytes(rng.randint(10, 200)))


def deep_nesting(app: str, depth: int, n: int) -> Case:
    topic = _tts_topic(app, f"bad-deep-{n}")
    if n % 2:
        return Case("deep_objects", topic, b'{"a":' * depth + b"1" + b"}" * depth)
    return Case("deep_arrays", topic, b"[" * depth + b"]" * depth)


def huge_string_cases(app: str, rng: random.Random, n: int) -> list[Case]:
    """Strings of ~100-200 KB (under the size limit) where the spec guarantees a dead letter."""
    cases = []
    dev = f"bad-huge-session-{n}"
    body = set_path(_uplink(dev, app, 980_000 + n), ("uplink_message", "session_key_id"), random_b64(rng, 100_000))
    cases.append(Case("huge_session_key_id", _tts_topic(app, dev), body_bytes(body)))
    dev = f"bad-huge-simulated-{n}"
    body = _uplink(dev, app, 980_000 + n)
    body["simulated"] = "y" * 150_000
    cases.append(Case("huge_simulated_string", _tts_topic(app, dev), body_bytes(body)))
    dev = f"bad-huge-uplink-{n}"
    body = _uplink(dev, app, 980_000 + n)
    body["uplink_message"] = "u" * 200_000
    cases.append(Case("huge_uplink_message_string", _tts_topic(app, dev), body_bytes(body)))
    body = _uplink("x" * 180_000, app, 980_000 + n)
    cases.append(Case("huge_device_id", _tts_topic(app, f"bad-huge-device-{n}"), body_bytes(body)))
    return cases


# --- valid uplinks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Valid:
    topic: str
    raw: bytes
    device: str
    f_cnt: int
    f_port: int
    payload: bytes
    time: datetime


def valid_uplink(app: str, device: str, f_cnt: int, time: datetime | None = None) -> Valid:
    payload = ldds75(300 + f_cnt % 4000)
    body = tts_uplink(device, f_cnt=f_cnt, app=app, payload=payload, time=time)
    t = datetime.fromisoformat(body["uplink_message"]["received_at"])
    return Valid(topic_for(body), raw(body), device, f_cnt, 2, payload, t)


def chirpstack_uplink(
    dev_eui: str, f_cnt: int, f_port: int, payload: bytes, time: datetime, dedup: str
) -> tuple[str, dict[str, Any]]:
    body = copy.deepcopy(example("chirpstack_7_4_up"))
    body["deduplicationId"] = dedup
    body["time"] = time.isoformat()
    body["deviceInfo"]["devEui"] = dev_eui
    body["deviceInfo"]["deviceName"] = f"cs-{dev_eui}"
    body["fCnt"] = f_cnt
    body["fPort"] = f_port
    body["data"] = base64.b64encode(payload).decode()
    body.pop("object", None)
    for rx in body["rxInfo"]:
        rx["nsTime"] = time.isoformat()
    app = body["deviceInfo"]["applicationId"]
    return f"application/{app}/device/{dev_eui}/event/up", body


def now_utc() -> datetime:
    return datetime.now(UTC)
