"""RFC 3339 timestamps the way each network server writes them, fast enough for 10k messages/s.

Simulation time is a float of seconds since the Unix epoch (UTC); message timestamps are integer
nanoseconds so the sub-second digits are exact. Both servers trim the fraction to 0, 3, 6 or 9 digits;
TTS ends with `Z`, ChirpStack (pbjson/chrono) with `+00:00`. The date part is cached and the time of
day is plain arithmetic, because a message carries several timestamps and strftime is slow.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: An RFC 3339 UTC timestamp as either server writes it (fraction optional, `Z` or `+00:00`).
RFC3339_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


@lru_cache(maxsize=64)
def _day(day: int) -> str:
    """`YYYY-MM-DDT` for days since the epoch."""
    return (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")


def _second(sec: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS` for whole seconds since the epoch (date cached, time by arithmetic)."""
    day, rest = divmod(sec, 86400)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    return f"{_day(day)}{hour:02d}:{minute:02d}:{second:02d}"


def _fraction(frac_ns: int) -> str:
    """The fraction trimmed to 0, 3, 6 or 9 digits, as protobuf JSON and chrono's AutoSi do."""
    if frac_ns == 0:
        return ""
    if frac_ns % 1_000_000 == 0:
        return f".{frac_ns // 1_000_000:03d}"
    if frac_ns % 1_000 == 0:
        return f".{frac_ns // 1_000:06d}"
    return f".{frac_ns:09d}"


#: Text of recent whole seconds. A message's timestamps span two or three seconds and consecutive
#: messages come from different devices, so a one-second memo misses often; a bounded dict does not.
_seconds: dict[int, str] = {}
_SECONDS_MAX = 4096


def format_ns(ns: int, suffix: str = "Z") -> str:
    """Format integer nanoseconds since the epoch; `suffix` is `Z` (TTS) or `+00:00` (ChirpStack)."""
    sec, frac = divmod(ns, NS)
    text = _seconds.get(sec)
    if text is None:
        if len(_seconds) >= _SECONDS_MAX:
            _seconds.clear()
        text = _seconds[sec] = _second(sec)
    if frac % 1_000:  # the common case (network-server clocks), formatted without calling `_fraction`
        return f"{text}.{frac:09d}{suffix}"
    return text + _fraction(frac) + suffix


def tts_time(ns: int) -> str:
    """A TTS timestamp, e.g. `2025-11-03T07:42:18.702266803Z`."""
    return format_ns(ns, "Z")


def chirpstack_time(ns: int) -> str:
    """A ChirpStack timestamp, e.g. `2025-11-03T07:42:18.702266+00:00`."""
    return format_ns(ns, "+00:00")


#: TTS's form of it (UTC, `Z`), which `parse_ns` reads without building a datetime.
_TTS_RE = re.compile(r"(\d{4}-\d{2}-\d{2})T([01]\d|2[0-3]):([0-5]\d):([0-5]\d)(?:\.(\d{1,9}))?Z", re.ASCII)


@lru_cache(maxsize=64)
def _day_start(date: str) -> int:
    """Seconds since the epoch at the start of the day `YYYY-MM-DD` (ValueError if there is none)."""
    return (datetime.fromisoformat(date + "T00:00:00+00:00") - _EPOCH) // timedelta(seconds=1)


def parse_ns(text: str) -> int:
    """Integer nanoseconds from an RFC 3339 timestamp with up to 9 fraction digits (exact, unlike
    `datetime.fromisoformat`, which truncates to microseconds). TTS's form is read by arithmetic on a
    cached day, in half the time: a capture's every line has one."""
    tts = _TTS_RE.fullmatch(text)
    if tts is not None:
        date, hour, minute, second, frac = tts.groups()
        seconds = _day_start(date) + int(hour) * 3600 + int(minute) * 60 + int(second)
        return seconds * NS + (int(frac.ljust(9, "0")) if frac else 0)
    match = RFC3339_RE.match(text)
    if match is None:
        msg = f"not an RFC 3339 timestamp: {text!r}"
        raise ValueError(msg)
    whole, frac, zone = match.groups()
    base = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    seconds = (base - _EPOCH) // timedelta(seconds=1)
    frac_ns = int((frac[1:] + "000000000")[:9]) if frac else 0
    return seconds * NS + frac_ns


def shift_text(text: str, offset_ns: int) -> str:
    """`text` moved by `offset_ns`, keeping its suffix style; the fraction keeps its digit count when
    the offset is whole seconds (what replay uses), so only the shifted digits change."""
    match = RFC3339_RE.match(text)
    if match is None:
        return text
    _, frac, zone = match.groups()
    ns = parse_ns(text) + offset_ns
    sec, frac_ns = divmod(ns, NS)
    if frac and offset_ns % NS == 0:
        digits = len(frac) - 1
        fraction = "." + f"{frac_ns:09d}"[:digits]
    else:
        fraction = _fraction(frac_ns)
    return _second(sec) + fraction + ("Z" if zone == "Z" else zone)


def from_datetime(value: datetime) -> float:
    """Simulation seconds from an aware datetime (naive datetimes are refused: they hide a zone bug)."""
    if value.tzinfo is None:
        msg = "naive datetime: give an aware UTC datetime"
        raise ValueError(msg)
    return value.timestamp()


def iso(t: float) -> str:
    """Seconds as an RFC 3339 UTC timestamp (`Z`) to the millisecond, for labels and capture lines."""
    return tts_time(round(t * 1000) * 1_000_000)


def now_ns() -> int:
    """The wall clock in integer nanoseconds (UTC)."""
    return time.time_ns()
