"""store/outbox.py against a real TimescaleDB: idempotent enqueue with a wake-up, the lease, SKIP LOCKED,
the attempt guard, the audit rows and the counts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg

from store import outbox
from store.records import OutboxEntry
from tests.integration.alerts.notify_helpers import gully_payload, insert_alert

T0 = datetime(2025, 1, 10, 6, 0, tzinfo=UTC)


def _entry(alert_id: int, key: str, **payload: object) -> OutboxEntry:
    return OutboxEntry(
        alert_id, "opened", "webhook", "highways", "http://127.0.0.1:9/x", gully_payload(alert_id, **payload), key
    )


def test_enqueue_is_idempotent_and_wakes_listeners(db_url: str) -> None:
    waker = outbox.OutboxWaker(db_url)
    try:
        with psycopg.connect(db_url) as conn:
            alert = insert_alert(conn)
            first = outbox.enqueue(conn, [_entry(alert, "k1"), _entry(alert, "k2"), _entry(alert, "k1")], now=T0)
            assert not waker.wait(0.2), "NOTIFY is delivered on commit, not before"
            conn.commit()
            assert waker.wait(5)
            again = outbox.enqueue(conn, [_entry(alert, "k2"), _entry(alert, "k3")], now=T0)
            conn.commit()
            assert len(first) == 2 and len(again) == 1
            rows = outbox.rows(conn)
            assert [r.idempotency_key for r in rows] == ["k1", "k2", "k3"]
            assert all(r.state == "pending" and r.attempts == 0 and r.next_attempt_at == T0 for r in rows)
            assert rows[0].payload["alert"]["device_id"] == "gully-0042"
            assert outbox.enqueue(conn, []) == []
    finally:
        waker.close()


def test_claim_leases_rows_and_a_second_claimer_skips_them(db_url: str) -> None:
    with psycopg.connect(db_url) as conn, psycopg.connect(db_url) as other:
        alert = insert_alert(conn)
        outbox.enqueue(conn, [_entry(alert, f"k{i}") for i in range(5)], now=T0)
        conn.commit()
        assert outbox.claim_due(conn, T0 - timedelta(seconds=1), 10) == []  # not due yet
        # a claim still in its transaction: the other claimer skips its rows instead of waiting
        held = outbox.claim_due(conn, T0, 2, lease=timedelta(seconds=30))
        skipped = outbox.claim_due(other, T0, 10)
        other.commit()
        assert [r.idempotency_key for r in held] == ["k0", "k1"]
        assert sorted(r.idempotency_key for r in skipped) == ["k2", "k3", "k4"]
        conn.commit()
        assert all(r.attempts == 1 and r.next_attempt_at == T0 + timedelta(seconds=30) for r in held)
        # leased: nobody gets them until the lease ends
        assert outbox.claim_due(other, T0 + timedelta(seconds=29), 10) == []
        again = outbox.claim_due(other, T0 + timedelta(seconds=30), 10)
        other.commit()
        assert sorted(r.idempotency_key for r in again) == ["k0", "k1"]
        assert all(r.attempts == 2 for r in again)


def test_two_claimers_racing_never_get_the_same_row(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        alert = insert_alert(conn)
        outbox.enqueue(conn, [_entry(alert, f"k{i:03}") for i in range(300)], now=T0)
        conn.commit()
    got: list[list[str]] = [[], []]

    def claimer(n: int) -> None:
        with psycopg.connect(db_url) as c:
            while rows := outbox.claim_due(c, T0, 3):
                c.commit()
                got[n].extend(r.idempotency_key for r in rows)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not set(got[0]) & set(got[1])
    assert len(got[0]) + len(got[1]) == 300


def test_outcomes_audit_and_counts(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        alert = insert_alert(conn)
        simulated = insert_alert(conn, simulated=True)
        outbox.enqueue(
            conn,
            [
                _entry(alert, "sent"),
                _entry(alert, "dead"),
                _entry(alert, "retry"),
                _entry(simulated, "sim"),
                _entry(alert, "flagged", simulated=True),
                _entry(alert, "odd", simulated="yes"),
            ],
            now=T0,
        )
        conn.commit()
        rows = {r.idempotency_key: r for r in outbox.claim_due(conn, T0, 10)}
        conn.commit()
        assert {k for k, r in rows.items() if r.simulated} == {"sim", "flagged", "odd"}
        at = T0 + timedelta(seconds=1)
        assert outbox.mark_sent(conn, rows["sent"].id, at)
        assert not outbox.mark_sent(conn, rows["sent"].id, at)  # once
        assert outbox.mark_failed(conn, rows["dead"].id, "HTTP 400 Bad Request", at, dead=True, attempt=1)
        # a stale sender (attempt 0) cannot overwrite the current claim's result
        assert not outbox.mark_failed(conn, rows["retry"].id, "late", at, dead=True, attempt=0)
        assert outbox.mark_failed(conn, rows["retry"].id, "HTTP 503", at + timedelta(seconds=5), dead=False, attempt=1)
        assert outbox.mark_suppressed(conn, rows["sim"].id, at)
        conn.commit()
        counts = outbox.counts(conn, at)
        assert (counts.pending, counts.due, counts.sent, counts.suppressed, counts.dead) == (3, 0, 2, 1, 1)
        assert counts.oldest_pending_at is not None
        assert outbox.counts(conn, at + timedelta(minutes=5)).due == 3
        log = conn.execute(
            "SELECT alert_id, action, note FROM alert_log WHERE actor = 'delivery' ORDER BY id"
        ).fetchall()
        assert [(a, action) for a, action, _ in log] == [
            (alert, "notified"),
            (alert, "notification_failed"),
            (simulated, "notification_suppressed"),
        ]
        assert "HTTP 400" in log[1][2]
        assert outbox.requeue_dead(conn, at) == 1
        conn.commit()
        (requeued,) = [r for r in outbox.rows(conn) if r.idempotency_key == "dead"]
        assert (requeued.state, requeued.attempts, requeued.next_attempt_at) == ("pending", 0, at)
