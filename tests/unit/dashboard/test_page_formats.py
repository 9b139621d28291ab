"""How the pages write durations, times and trends, and where a login may send someone next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.pages import formats
from dashboard.pages.session import safe_next


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.4, "59 s"), (60, "1 min"), (200, "3 min 20 s"), (660, "11 min"), (3600, "1 h"),
     (7500, "2 h 5 min"), (86400, "1 d"), (3 * 86400 + 4 * 3600, "3 d 4 h"), (None, "—"), (float("nan"), "—")],
)  # fmt: skip
def test_duration(seconds: float | None, text: str) -> None:
    assert formats.duration(seconds) == text


def test_ago_and_utc() -> None:
    now = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    assert formats.ago(None, now) == "never"
    assert formats.ago(now - timedelta(seconds=2), now) == "just now"
    assert formats.ago(now - timedelta(minutes=12), now) == "12 min ago"
    assert formats.utc(now) == "2026-12-03 14:00 UTC"


def test_trend_says_direction_in_words_and_arrow() -> None:
    assert formats.trend(35.2) == "↑ rising 35 mm/h"
    assert formats.trend(-12) == "↓ falling 12 mm/h"
    assert formats.trend(0.4) == "→ steady"
    assert formats.trend(None) == "—"


def test_number() -> None:
    assert formats.number(1234.567, 1, "mm") == "1,234.6 mm"
    assert formats.number(None, 0, "V") == "—"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("/inbox", "/inbox"), ("/gullies/g-1?range=1y", "/gullies/g-1?range=1y"), ("//evil.example", None),
     ("https://evil.example/", None), ("/\\evil", None), ("", None), (None, None), ("inbox", None)],
)  # fmt: skip
def test_next_is_only_a_path_on_this_site(value: str | None, expected: str | None) -> None:
    assert safe_next(value) == expected
