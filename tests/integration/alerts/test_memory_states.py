"""Replay's in-memory rule states (alerts/states.py `MemoryStates`) keep their due times in a lazy heap
of distinct times; whatever the sequence of saves, the next due times it tells are those a scan of
every state would give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.states import MemoryStates

T0 = datetime(2026, 11, 1, tzinfo=UTC)
keys = st.tuples(st.sampled_from(["offline", "silt", "flood"]), st.sampled_from([f"device:{n}" for n in range(8)]))
dues = st.none() | st.integers(0, 12).map(lambda m: T0 + timedelta(minutes=m))  # few times: many shared
passes = st.lists(st.dictionaries(keys, dues, max_size=10), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(passes=passes, now=st.integers(0, 12))
def test_due_times_are_what_a_scan_of_every_state_gives(
    db_url: str, passes: list[dict[tuple[str, str], datetime | None]], now: int
) -> None:
    states = MemoryStates()
    truth: dict[tuple[str, str], datetime | None] = {}
    with psycopg.connect(db_url) as conn:
        for saved in passes:
            states.save(conn, {key: ({"n": 1}, due) for key, due in saved.items()})
            truth |= saved
            due = {k: d for k, d in truth.items() if d is not None}
            distinct = sorted(set(due.values()))
            assert states.next_due(conn) == (distinct[0] if distinct else None)
            assert states.upcoming(conn, 3) == distinct[:3]
            assert states.upcoming(conn, 3) == distinct[:3]  # asking again moves nothing
        until = T0 + timedelta(minutes=now)
        assert list(states.due(conn, until)) == sorted(k for k, d in truth.items() if d is not None and d <= until)


def test_a_heap_mostly_of_times_no_longer_due_is_rebuilt_without_losing_one(db_url: str) -> None:
    """An offline state's due time moves with every uplink: thousands of times pass through the heap."""
    states = MemoryStates()
    with psycopg.connect(db_url) as conn:
        states.save(conn, {("silt", "device:1"): ({}, T0 + timedelta(days=1))})  # stays due all along
        for minute in range(5000):
            states.save(conn, {("offline", "device:2"): ({}, T0 + timedelta(minutes=minute))})
        assert len(states._heap) < 2 * 2 + 1024 + 1  # rebuilt along the way
        assert states.upcoming(conn, 5) == [T0 + timedelta(days=1), T0 + timedelta(minutes=4999)]
