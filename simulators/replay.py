"""Replay a capture with its timestamps moved to now.

Every time field inside a payload (TTS `received_at` at any depth, `time`, `gps_time`; ChirpStack
`time`, `gwTime`, `nsTime`) and each line's `received_at` move by the same whole number of seconds,
fraction digits stay as they were, and the rest of the payload text is left byte for byte as
captured. The shift is chosen so that no message is dated ahead of the moment it is published (an
ingester refuses uplinks from the future): in real time the first message lands at now; faster, the
capture is moved back so that its last message lands when it is published (`--fast`: at now).
Device-side times inside payload bytes (a VS373 history record's unix timestamp) are the device's own
clock and are not touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from simulators.capture import Message
from simulators.timefmt import NS, now_ns, shift_text

TIME_KEYS = ("received_at", "time", "gps_time", "gwTime", "nsTime")
_TIME_FIELD = re.compile(
    r'("(?:' + "|".join(TIME_KEYS) + r')"\s*:\s*")(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d))"'
)


def shift_payload(text: str, offset_ns: int) -> str:
    """`text` with every known time field moved by `offset_ns`."""
    return _TIME_FIELD.sub(lambda m: m.group(1) + shift_text(m.group(2), offset_ns) + '"', text)


def offset_to_now(first_ns: int, now: int | None = None) -> int:
    """Whole seconds from the capture's first message to now."""
    now = now_ns() if now is None else now
    return round((now - first_ns) / NS) * NS


def offset_for(first_ns: int, last_ns: int, speed: float | None, now: int | None = None) -> int:
    """Whole seconds to move a capture spanning `first_ns`..`last_ns` replayed at `speed` (None: as
    fast as possible), so that each message is dated at or before the moment it is published."""
    now = now_ns() if now is None else now
    span = last_ns - first_ns
    published_span = 0 if speed is None else span / speed
    return round((now - last_ns + published_span) / NS) * NS


def shifted(messages: Iterable[Message], offset_ns: int | None = None) -> Iterator[Message]:
    """The messages with times moved (to now, from the first message, unless `offset_ns` is given)."""
    for message in messages:
        if offset_ns is None:
            offset_ns = offset_to_now(message.time_ns)
        payload = message.payload
        if isinstance(payload, str):
            payload = shift_payload(payload, offset_ns)
        yield Message(message.topic, payload, message.time_ns + offset_ns, message.qos, message.retain)
