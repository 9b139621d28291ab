"""A delivery process killed -9 in the middle of a send: nothing is lost, and the one notification in
flight is sent again after its lease, with the same idempotency key (at-least-once)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import psycopg

from alerts.delivery import Delivery, RetryPolicy
from alerts.notifiers.webhook import WebhookNotifier
from tests.integration.alerts.notify_helpers import Clock, Received, WebhookReceiver, enqueue, outbox_rows, wait_until

ROOT = Path(__file__).resolve().parents[3]
SECRET = "kill-test-secret"
LEASE_S = 30.0


def test_kill_9_mid_send_loses_nothing_and_repeats_with_the_same_key(db_url: str, tmp_path: Path) -> None:
    release = threading.Event()
    first: list[Received] = []

    def respond(request: Received) -> int:
        if not first:
            first.append(request)
            release.wait(30)  # hold the first request open until the sender is dead
        return 200

    receiver = WebhookReceiver(secret=SECRET, respond=respond).start()
    log = (tmp_path / "deliver.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.alerts.deliver_proc", db_url, SECRET, str(LEASE_S)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        keys = enqueue(db_url, 4, target=receiver.url)
        wait_until(lambda: bool(first), timeout=30, what="the first request")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        release.set()
        in_flight = first[0].key
        (row,) = [r for r in outbox_rows(db_url) if r.idempotency_key == in_flight]
        assert (row.state, row.attempts) == ("pending", 1)  # never marked sent: the answer never came back

        clock = Clock()
        delivery = Delivery(
            lambda: psycopg.connect(db_url),
            [WebhookNotifier(secret=SECRET)],
            clock=clock,
            policy=RetryPolicy(lease=timedelta(seconds=LEASE_S)),
        )
        delivery.run_once()  # the rest (never claimed) go now; the leased one waits for its lease
        assert [r.key for r in receiver.received].count(in_flight) == 1
        clock.advance(LEASE_S + 1)
        delivery.run_once()
        got = [r.key for r in receiver.received]
        assert sorted(set(got)) == keys  # nothing lost
        assert got.count(in_flight) == 2 and all(got.count(k) == 1 for k in keys if k != in_flight)
        repeats = [r for r in receiver.received if r.key == in_flight]
        assert repeats[0].json["idempotency_key"] == repeats[1].json["idempotency_key"] == in_flight
        assert repeats[0].body == repeats[1].body  # byte for byte: a receiver may dedupe on either
        assert all(r.signature_ok for r in receiver.received)
        rows = outbox_rows(db_url)
        assert all(r.state == "sent" for r in rows)
        assert {r.idempotency_key: r.attempts for r in rows}[in_flight] == 2
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
        receiver.stop()
