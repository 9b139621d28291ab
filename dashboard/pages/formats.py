"""How the pages write times, durations and numbers: plain words a person reads at a glance
("waited 3 min 20 s", "12 min ago"), always with the exact UTC time beside for the record."""

from __future__ import annotations

import math
from datetime import datetime


def duration(seconds: float | None) -> str:
    """`45 s`, `3 min 20 s`, `2 h 5 min`, `3 d 4 h`; an em dash for unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, r = divmod(s, 60)
        return f"{m} min {r} s" if r and m < 10 else f"{m} min"
    if s < 86400:
        h, r = divmod(s, 3600)
        return f"{h} h {r // 60} min" if r >= 60 else f"{h} h"
    d, r = divmod(s, 86400)
    return f"{d} d {r // 3600} h" if r >= 3600 else f"{d} d"


def ago(t: datetime | None, now: datetime) -> str:
    """`12 min ago`, `just now`, `never`."""
    if t is None:
        return "never"
    seconds = (now - t).total_seconds()
    if seconds < 5:
        return "just now"
    return f"{duration(seconds)} ago"


def utc(t: datetime | None) -> str:
    """The exact time, for a title attribute or a <time> element: `2026-12-03 14:05 UTC`."""
    return "—" if t is None else t.strftime("%Y-%m-%d %H:%M UTC")


def iso(t: datetime | None) -> str:
    return "" if t is None else t.isoformat()


def number(value: float | None, digits: int = 0, unit: str = "") -> str:
    """A rounded number with its unit, or an em dash when unknown."""
    if value is None or not math.isfinite(value):
        return "—"
    text = f"{value:,.{digits}f}"
    if text.startswith("-") and not text.strip("-0.,"):
        text = text[1:]  # -0.2 rounds to "-0": say 0
    return f"{text} {unit}" if unit else text


def trend(mm_per_h: float | None) -> str:
    """A level's trend in words with an arrow (not colour alone): `rising 35 mm/h`."""
    if mm_per_h is None or not math.isfinite(mm_per_h):
        return "—"
    if abs(mm_per_h) < 1:
        return "→ steady"
    word, arrow = ("rising", "↑") if mm_per_h > 0 else ("falling", "↓")
    return f"{arrow} {word} {abs(mm_per_h):.0f} mm/h"
