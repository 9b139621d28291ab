"""Pure helpers of the devices, readings and health routes: packet loss from frame counters, bucket
alignment and paging, the default range, and the one-row registry file a create or update becomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from dashboard.api.readings import DEFAULT_RANGE, bucket_window, requested_range
from store.device_views import registry_row
from store.radio import MAX_FCNT_GAP, RadioSample, packet_loss
from store.reading_series import floor
from store.registry_csv import parse

T = datetime(2026, 3, 1, 12, 7, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


def frames(*f_cnts: int | None, new_session_at: int | None = None) -> list[RadioSample]:
    return [RadioSample(T, f, i == new_session_at, None, None, []) for i, f in enumerate(f_cnts)]


def test_packet_loss_counts_gaps() -> None:
    loss = packet_loss(frames(1, 2, 4, 5, 9))
    assert (loss.received, loss.expected, loss.lost, loss.resets) == (5, 9, 4, 0)
    assert loss.ratio == 4 / 9


def test_packet_loss_repeats_and_missing_counters() -> None:
    assert packet_loss(frames(7, 7, None, 8)) == packet_loss(frames(7, 8))
    assert packet_loss([]).ratio is None


def test_packet_loss_resets_are_not_losses() -> None:
    back = packet_loss(frames(100, 101, 3, 4))  # a reboot: the counter went back
    assert (back.received, back.expected, back.resets) == (4, 4, 1)
    rejoin = packet_loss(frames(5, 6, 9, new_session_at=2))  # a new session restarts the count
    assert (rejoin.expected, rejoin.resets) == (3, 1)
    jump = packet_loss(frames(1, 2 + MAX_FCNT_GAP))  # a jump no network server would accept
    assert (jump.expected, jump.resets) == (2, 1)
    assert packet_loss(frames(1, 1 + MAX_FCNT_GAP)).lost == MAX_FCNT_GAP - 1


def test_packet_loss_across_the_32_bit_wrap() -> None:
    loss = packet_loss(frames(2**32 - 2, 2**32 - 1, 1))
    assert (loss.received, loss.expected, loss.resets) == (3, 4, 0)


def test_floor_is_time_bucket_alignment() -> None:
    assert floor(T, timedelta(minutes=15)) == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert floor(T, timedelta(days=1)) == datetime(2026, 3, 1, tzinfo=UTC)
    # Another zone, the same instant: UTC-aligned buckets.
    assert floor(T.astimezone(timezone(timedelta(hours=5, minutes=30))), HOUR) == datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_bucket_pages_end_on_boundaries() -> None:
    start, end = T, T + 5 * HOUR
    first = bucket_window(start, end, HOUR, None, 2)
    assert (first.start, first.end) == (T, datetime(2026, 3, 1, 14, tzinfo=UTC)) and first.next_start == first.end
    second = bucket_window(start, end, HOUR, first.next_start, 2)
    assert second.end == datetime(2026, 3, 1, 16, tzinfo=UTC)
    last = bucket_window(start, end, HOUR, second.next_start, 2)
    assert (last.end, last.next_start) == (end, None)
    assert bucket_window(end, start, HOUR, None, 2).next_start is None  # an inverted range: empty, no more


def test_requested_range_defaults() -> None:
    assert requested_range(None, None, T) == (T - DEFAULT_RANGE, T)
    assert requested_range(T - HOUR, None, T) == (T - HOUR, T)
    year_one = datetime(1, 1, 1, 3, tzinfo=UTC)
    assert requested_range(None, year_one, T)[0] == datetime(1, 1, 1, tzinfo=UTC)


def test_registry_row_parses_back_to_the_values_given() -> None:
    values = {"kind": "gully", "name": 'Gully "A", north', "latitude": 51.4545, "sensor_height_mm": 1e16}
    parsed = parse(registry_row("g-1", "app", {**values, "care_room": None}))
    assert parsed.errors == []
    (entry,) = parsed.entries
    assert (entry.device_id, entry.application_id) == ("g-1", "app")
    assert entry.values == {**values, "care_room": None}
    assert parsed.columns == ("kind", "name", "latitude", "sensor_height_mm", "care_room")
