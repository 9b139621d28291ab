"""Time to acknowledge against a real TimescaleDB: the 60 s boundary, unacknowledged calls past the
target as misses, wall-clock times only, simulated and late alerts, and what each role counts.

Alerts are inserted by hand as the owner with explicit wall-clock times (`created_at`,
`acknowledged_at`, their trail's `at`); their data times (`opened_at`, `firing_at`) are set years
away, so a wait measured on them would be wildly wrong."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from store import access, ack_times
from store.ack_times import AckStats, Call, Waiting

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=1)
DATA_TIME = datetime(2020, 1, 1, tzinfo=UTC)  # data time: never part of a wait
S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
_rules = itertools.count(1)


@pytest.fixture
def refs(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "INSERT INTO devices (device_id, application_id, kind, care_room, care_group) VALUES "
            "('bed-1', 'app', 'care', 'bedroom', 'flat-a'), ('hall-1', 'app', 'care', 'hall', 'flat-a'), "
            "('gully-1', 'app', 'gully', NULL, NULL) RETURNING device_id, id"
        ).fetchall()
    return dict(rows)


def alert(
    conn: psycopg.Connection,
    category: str,
    created: datetime,
    *,
    ref: int | None,
    acked: timedelta | None = None,
    state: str | None = None,
    kind: str = "care",
    fired: bool = True,
    simulated: bool = False,
    late: bool = False,
    subject: str | None = None,
    log: tuple[tuple[str, timedelta], ...] = (),
) -> int:
    """An alert created (wall clock) at `created`, acknowledged `acked` later; `log`: its trail's
    (to_state, after) rows."""
    state = state or ("acknowledged" if acked is not None else "firing")
    row = conn.execute(
        "INSERT INTO alerts (rule, category, severity, subject, device_ref, device_id, kind, state, simulated, late, "
        "opened_at, firing_at, created_at, acknowledged_at) "
        "VALUES (%s, %s, 'critical', %s, %s, (SELECT device_id FROM devices WHERE id = %s), %s, %s, %s, %s, "
        "%s, %s, %s, %s) RETURNING id",
        (
            f"rule-{next(_rules)}",
            category,
            subject or (f"device:{ref}" if ref else "gateway:gw-1"),
            ref,
            ref,
            kind,
            state,
            simulated,
            late,
            DATA_TIME,
            DATA_TIME if fired else None,
            created,
            created + acked if acked is not None else None,
        ),
    ).fetchone()
    assert row is not None
    for to_state, after in log:
        conn.execute(
            "INSERT INTO alert_log (alert_id, at, actor, action, to_state) VALUES (%s, %s, 'x', %s, %s)",
            (row[0], created + after, to_state, to_state),
        )
    return int(row[0])


@contextmanager
def acting(api_db_url: str, role: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(api_db_url) as conn, conn.transaction():
        access.act_as(conn, role)
        yield conn


@pytest.fixture
def calls(db_url: str, refs: dict[str, int]) -> None:
    bed, hall = refs["bed-1"], refs["hall-1"]
    with psycopg.connect(db_url) as conn:
        alert(conn, "fall", NOW - 60 * MIN, ref=bed, acked=timedelta(seconds=59.9))  # within
        alert(conn, "fall", NOW - 50 * MIN, ref=bed, acked=timedelta(seconds=60.1))  # missed
        alert(conn, "fall", NOW - 40 * MIN, ref=bed, acked=10 * S)  # within
        alert(conn, "fall", NOW - 120 * S, ref=bed)  # still waiting, past the target: missed
        alert(conn, "fall", NOW - 30 * S, ref=bed)  # still waiting, within the target: not decided
        # resolved with nobody acknowledging it: after 5 min (missed), after 20 s (not decided)
        alert(conn, "fall", NOW - 30 * MIN, ref=bed, state="resolved", log=(("firing", 0 * S), ("resolved", 5 * MIN)))
        alert(conn, "fall", NOW - 20 * MIN, ref=bed, state="resolved", log=(("firing", 0 * S), ("resolved", 20 * S)))
        alert(conn, "fall", NOW - 10 * MIN, ref=bed, acked=5 * S, simulated=True)  # a console test
        alert(conn, "fall", NOW - 9 * MIN, ref=bed, state="resolved", late=True)  # history: nobody was called
        alert(conn, "fall", SINCE - S, ref=bed, acked=1 * S)  # before `since`
        alert(conn, "inactivity", NOW - 60 * MIN, ref=None, subject="flat:flat-a", acked=500 * S)  # missed
        # pending for 10 min, then firing: the call began when it fired (its trail says when)
        alert(conn, "offline", NOW - 3 * 60 * MIN, ref=hall, acked=630 * S, log=(("firing", 10 * MIN),))
        alert(conn, "offline", NOW - 2 * 60 * MIN, ref=hall, state="pending", fired=False)  # called nobody
        alert(conn, "flood", NOW - 60 * MIN, ref=refs["gully-1"], kind="gully", acked=20 * S)


def test_falls_against_the_60_second_target(db_url: str, calls: None) -> None:
    with psycopg.connect(db_url) as conn:
        stats = ack_times.ack_stats(conn, SINCE, now=NOW)
    assert (stats.count, stats.acknowledged, stats.within_target, stats.target_s) == (7, 3, 2, 60.0)
    assert stats.missed == 3  # 60.1 s, and two unacknowledged past 60 s
    assert stats.pct == pytest.approx(40.0)
    assert stats.median_s == pytest.approx(59.9)
    assert stats.p95_s == pytest.approx(60.08)
    assert stats.waits_s == pytest.approx((59.9, 60.1, 10.0))
    assert stats.meets_standard is False


def test_other_categories_simulated_and_targets(db_url: str, calls: None) -> None:
    with psycopg.connect(db_url) as conn:
        simulated = ack_times.ack_stats(conn, SINCE, include_simulated=True, now=NOW)
        offline = ack_times.ack_stats(conn, SINCE, ("offline",), now=NOW)
        everything = ack_times.ack_stats(conn, SINCE, None, now=NOW)
        lenient = ack_times.ack_stats(conn, SINCE, target_s=120.0, now=NOW)
    assert (simulated.count, simulated.acknowledged, simulated.within_target, simulated.pct) == (8, 4, 3, 50.0)
    assert (offline.count, offline.within_target) == (1, 1)
    assert offline.waits_s == pytest.approx((30.0,))
    # the falls, the inactivity (500 s), the offline (30 s after it fired) and the flood (20 s)
    assert (everything.count, everything.acknowledged, everything.within_target, everything.missed) == (10, 6, 4, 4)
    # 120 s exactly is within; the unacknowledged one of 120 s has not waited *longer* than that
    assert (lenient.within_target, lenient.missed, lenient.pct) == (3, 1, 75.0)


def test_each_role_counts_only_what_it_can_see(api_db_url: str, calls: None) -> None:
    with acting(api_db_url, "care") as conn:
        falls = ack_times.ack_stats(conn, SINCE, now=NOW)
        every = ack_times.ack_stats(conn, SINCE, None, now=NOW)
    assert (falls.count, falls.within_target, falls.missed) == (7, 2, 3)
    assert falls.pct == pytest.approx(40.0)
    assert every.count == 9  # not the flood
    with acting(api_db_url, "highways") as conn:
        falls = ack_times.ack_stats(conn, SINCE, now=NOW)
        every = ack_times.ack_stats(conn, SINCE, None, now=NOW)
    assert falls == AckStats(0, 0, 0, 0, None, None, None, (), 60.0)
    assert falls.meets_standard is None
    assert (every.count, every.within_target) == (1, 1)
    assert every.waits_s == pytest.approx((20.0,))


def test_unacknowledged_waits_run_to_the_database_clock_by_default(db_url: str, refs: dict[str, int]) -> None:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        alert(conn, "fall", row[0] - 60 * MIN, ref=refs["bed-1"])
        assert ack_times.ack_stats(conn, row[0] - 2 * 60 * MIN).missed == 1
        early = ack_times.ack_stats(conn, row[0] - 2 * 60 * MIN, now=row[0] - 59 * MIN)
        assert (early.missed, early.pct) == (0, None)


def test_summarise_and_percentiles() -> None:
    assert ack_times.percentile([], 0.5) is None
    assert ack_times.percentile([4.0], 0.95) == 4.0
    assert ack_times.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    stats = ack_times.summarise([Call(60.0, 60.0), Call(None, 61.0), Call(None, 59.0)])
    assert (stats.count, stats.within_target, stats.missed, stats.pct) == (3, 1, 1, 50.0)
    assert ack_times.summarise([Call(30.0, 30.0)] * 985 + [Call(90.0, 90.0)] * 15).meets_standard is True


def test_waiting_lists_open_unacknowledged_alerts_longest_first(
    db_url: str, api_db_url: str, refs: dict[str, int]
) -> None:
    bed, hall = refs["bed-1"], refs["hall-1"]
    with psycopg.connect(db_url) as conn:
        gateway = alert(conn, "gateway_offline", NOW - 6 * 60 * MIN, ref=None, kind="gateway")
        flood = alert(conn, "flood", NOW - 5 * 60 * MIN, ref=refs["gully-1"], kind="gully")
        fired_late = alert(conn, "offline", NOW - 4 * 60 * MIN, ref=hall, log=(("firing", 3 * 60 * MIN),))
        pending = alert(conn, "offline", NOW - 2 * 60 * MIN, ref=hall, state="pending", fired=False)
        fall = alert(conn, "fall", NOW - 120 * S, ref=bed)
        test = alert(conn, "fall", NOW - 60 * S, ref=bed, simulated=True)
        welfare = alert(conn, "inactivity", NOW - 30 * S, ref=None, subject="flat:flat-a")
        alert(conn, "fall", NOW - 9 * 60 * MIN, ref=bed, acked=5 * S)  # someone has it
        alert(conn, "fall", NOW - 8 * 60 * MIN, ref=bed, state="resolved")
        owner = ack_times.waiting(conn)

    def shown(a_id: int, category: str, state: str, device: str | None, room: str | None, flat: str | None,
              created: datetime, since: datetime | None = None, simulated: bool = False) -> Waiting:  # fmt: skip
        return Waiting(a_id, category, "critical", state, device, room, flat, created, since or created, 0, simulated)

    rows = {
        gateway: shown(gateway, "gateway_offline", "firing", None, None, None, NOW - 6 * 60 * MIN),
        flood: shown(flood, "flood", "firing", "gully-1", None, None, NOW - 5 * 60 * MIN),
        pending: shown(pending, "offline", "pending", "hall-1", "hall", "flat-a", NOW - 2 * 60 * MIN),
        fired_late: shown(
            fired_late, "offline", "firing", "hall-1", "hall", "flat-a", NOW - 4 * 60 * MIN, NOW - 60 * MIN
        ),
        fall: shown(fall, "fall", "firing", "bed-1", "bedroom", "flat-a", NOW - 120 * S),
        test: shown(test, "fall", "firing", "bed-1", "bedroom", "flat-a", NOW - 60 * S, simulated=True),
        welfare: shown(welfare, "inactivity", "firing", None, None, "flat-a", NOW - 30 * S),
    }
    assert owner == [rows[i] for i in (gateway, flood, pending, fired_late, fall, test, welfare)]
    with acting(api_db_url, "care") as conn:
        assert ack_times.waiting(conn) == [rows[i] for i in (gateway, pending, fired_late, fall, test, welfare)]
        assert ack_times.waiting(conn, ("fall",)) == [rows[fall], rows[test]]
        assert ack_times.waiting(conn, ("fall",), include_simulated=False) == [rows[fall]]
    with acting(api_db_url, "highways") as conn:
        assert ack_times.waiting(conn) == [rows[gateway], rows[flood]]
        assert ack_times.waiting(conn, ("fall", "inactivity", "offline")) == []
