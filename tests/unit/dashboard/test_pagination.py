"""Keyset cursors: round trips, and every malformed cursor is a 400 (never a 500 from the database)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.errors import ApiError
from dashboard.pagination import decode_cursor, encode_cursor, page


def raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@given(st.datetimes(timezones=st.just(UTC)), st.integers(-(2**63), 2**63 - 1), st.text())
def test_round_trip(when: datetime, ident: int, text: str) -> None:
    cursor = encode_cursor(when, ident, text.replace("\x00", ""))
    assert decode_cursor(cursor, datetime, int, str) == (when, ident, text.replace("\x00", ""))


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor(None, int) is None


@pytest.mark.parametrize(
    "cursor",
    [
        "", "!!!", "W10", raw("{}"), raw("[1, 2]"), raw('["1"]'), raw("[1.5]"), raw("[true]"),
        raw(str(2**63).join("[]")), raw('["\\u0000"]'), raw("[1"), "\x00",
    ],
)  # fmt: skip
def test_malformed_cursors_are_400(cursor: str) -> None:
    with pytest.raises(ApiError) as exc:
        decode_cursor(cursor, int)
    assert (exc.value.status_code, exc.value.code) == (400, "invalid_cursor")


@pytest.mark.parametrize("value", ['["2026-01-01T00:00:00"]', '["not a time"]', "[5]"])
def test_times_must_be_aware_iso_strings(value: str) -> None:
    with pytest.raises(ApiError):
        decode_cursor(raw(value), datetime)


@given(st.text(max_size=600))
def test_any_text_decodes_or_is_400(cursor: str) -> None:
    try:
        decode_cursor(cursor, datetime, int)
    except ApiError as exc:
        assert exc.status_code == 400


@dataclass
class Row:
    id: int


def test_page_uses_the_extra_row_to_say_there_is_more() -> None:
    rows = [Row(5), Row(4), Row(3)]
    assert page(rows, 2, key=lambda r: (r.id,)) == (rows[:2], encode_cursor(4))
    assert page(rows, 3, key=lambda r: (r.id,)) == (rows, None)
    assert page([], 3, key=lambda r: (r.id,)) == ([], None)
