"""A delivery loop as a process of its own, for the kill -9 test: `python -m
tests.integration.alerts.deliver_proc DATABASE_URL SECRET LEASE_S`. Wall clock, one send at a time."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime, timedelta

import psycopg

from alerts.delivery import Delivery, RetryPolicy
from alerts.notifiers.webhook import WebhookNotifier


def main() -> None:
    url, secret, lease_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    delivery = Delivery(
        lambda: psycopg.connect(url),
        [WebhookNotifier(secret=secret, timeout=lease_s / 3)],
        clock=lambda: datetime.now(UTC),
        policy=RetryPolicy(lease=timedelta(seconds=lease_s)),
        concurrency=1,
        poll=0.1,
        listen=url,
    )
    delivery.run(threading.Event())


if __name__ == "__main__":
    main()
