"""Webhook delivery end to end: outbox rows in a real TimescaleDB, a real HTTP receiver on loopback
verifying the HMAC signature, and Delivery driven by a clock the test moves (no real minute waits)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.delivery import Delivery, RetryPolicy
from alerts.notifiers.webhook import EVENT_HEADER, SIGNATURE_HEADER, WebhookNotifier, encode
from store import outbox
from tests.integration.alerts.notify_helpers import (
    Clock,
    Received,
    WebhookReceiver,
    audit,
    care_payload,
    enqueue,
    outbox_rows,
    wait_until,
)

SECRET = "s3cret-for-tests"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(secret=SECRET).start()
    yield server
    server.stop()


def _delivery(db_url: str, clock: Clock, *, policy: RetryPolicy | None = None, **notifier: object) -> Delivery:
    webhook = WebhookNotifier(secret=SECRET, timeout=2.0, **notifier)  # type: ignore[arg-type]
    return Delivery(lambda: psycopg.connect(db_url), [webhook], clock=clock, policy=policy)


def _drive(delivery: Delivery, clock: Clock, seconds: float, step: float = 1.0) -> None:
    """Move the clock `seconds` forward in `step`s, a delivery pass at each."""
    for _ in range(round(seconds / step)):
        clock.advance(step)
        delivery.run_once()


def test_delivery_is_signed_and_carries_the_idempotency_key(db_url: str, receiver: WebhookReceiver) -> None:
    clock = Clock()
    keys = enqueue(db_url, 3, target=receiver.url, now=clock())
    assert _delivery(db_url, clock).run_once() == 3
    assert receiver.keys() == keys
    for request in receiver.ok():
        assert request.signature_ok is True
        assert request.headers["content-type"] == "application/json"
        assert request.headers[EVENT_HEADER.lower()] == "opened"
        body = request.json
        assert body["idempotency_key"] == request.key  # in the body as well as the header
        assert body["alert"]["device_id"] == "gully-0042"
        assert request.body == encode(body)  # the bytes signed are the bytes sent, canonical
    rows = outbox_rows(db_url)
    assert all(r.state == "sent" and r.attempts == 1 and r.last_error is None for r in rows)
    assert [action for _, action, _ in audit(db_url)] == ["notified"] * 3
    assert _delivery(db_url, clock).run_once() == 0  # nothing twice


def test_a_wrong_secret_fails_verification_and_routes_can_have_their_own(
    db_url: str, receiver: WebhookReceiver
) -> None:
    clock = Clock()
    enqueue(db_url, 1, target=receiver.url, route="other-team", now=clock())
    enqueue(db_url, 1, target=receiver.url, route="unsigned", now=clock())
    enqueue(db_url, 1, target=receiver.url, route="highways", now=clock())
    delivery = _delivery(db_url, clock, route_secrets={"other-team": "another-secret", "unsigned": None})
    assert delivery.run_once() == 3
    route_of = {r.idempotency_key: r.route for r in outbox_rows(db_url)}
    by_route = {route_of[r.key]: r for r in receiver.ok()}
    assert by_route["highways"].signature_ok is True
    assert by_route["other-team"].signature_ok is False  # signed, but not with the receiver's secret
    assert SIGNATURE_HEADER.lower() in by_route["other-team"].headers
    assert SIGNATURE_HEADER.lower() not in by_route["unsigned"].headers


def test_webhook_down_for_a_minute_then_everything_arrives_once(db_url: str, receiver: WebhookReceiver) -> None:
    """Refused connections for 30 s, then 503s until 60 s, then up: every notification arrives exactly
    once, on the first retry after the receiver came back (backoff 5, 10, 20, 40 s: at 75 s)."""
    clock = Clock()
    start = clock()
    up_at = start + timedelta(seconds=60)
    receiver.respond = lambda _r: 200 if clock() >= up_at else 503
    receiver.stop()  # connection refused
    keys = enqueue(db_url, 20, target=receiver.url, now=start)
    delivery = _delivery(db_url, clock)
    delivery.run_once()
    _drive(delivery, clock, 30)
    assert receiver.received == []
    pending = outbox_rows(db_url)
    assert all(r.state == "pending" and "unreachable" in (r.last_error or "") for r in pending)
    receiver.start()  # same port, answering 503 until up_at
    _drive(delivery, clock, 30)
    assert receiver.ok() == [] and len(receiver.received) == 20  # the 35 s retry got 503s
    _drive(delivery, clock, 120)
    assert receiver.keys() == keys  # each once
    rows = outbox_rows(db_url)
    assert all(r.state == "sent" for r in rows)
    assert {r.attempts for r in rows} == {5}  # 0 s, 5 s, 15 s, 35 s failed; 75 s arrived
    assert all(start + timedelta(seconds=75) <= r.sent_at <= start + timedelta(seconds=76) for r in rows if r.sent_at)
    _drive(delivery, clock, 600, step=60)
    assert receiver.keys() == keys  # and never again


def test_client_errors_are_dead_at_once_but_408_and_429_are_retried(db_url: str, receiver: WebhookReceiver) -> None:
    clock = Clock()
    paths = {"/bad": 400, "/gone": 404, "/slow": 408, "/busy": 429, "/moved": 302}
    receiver.respond = lambda r: paths[r.path]
    receiver.extra_headers = lambda r: (
        {"Retry-After": "30"}
        if r.path == "/busy"
        else ({"Location": "http://example.invalid/new"} if r.path == "/moved" else {})
    )
    base = receiver.url.removesuffix("/hook")
    for path in paths:
        enqueue(db_url, 1, target=base + path, now=clock())
    _delivery(db_url, clock).run_once()
    rows = {r.target.removeprefix(base): r for r in outbox_rows(db_url)}
    assert {p: (r.state, r.attempts) for p, r in rows.items()} == {
        "/bad": ("dead", 1),
        "/gone": ("dead", 1),
        "/slow": ("pending", 1),
        "/busy": ("pending", 1),
        "/moved": ("dead", 1),
    }
    assert "HTTP 400" in (rows["/bad"].last_error or "")
    assert "redirects are not followed" in (rows["/moved"].last_error or "")
    assert rows["/slow"].next_attempt_at == clock() + timedelta(seconds=5)
    assert rows["/busy"].next_attempt_at == clock() + timedelta(seconds=30)  # Retry-After honoured
    assert [r.path for r in receiver.received].count("/moved") == 1  # no GET to the Location
    assert sorted(action for _, action, _ in audit(db_url)) == ["notification_failed"] * 3


def test_dead_after_the_attempt_limit(db_url: str, receiver: WebhookReceiver) -> None:
    clock = Clock()
    receiver.respond = lambda _r: 500
    enqueue(db_url, 2, target=receiver.url, now=clock())
    delivery = _delivery(db_url, clock, policy=RetryPolicy(max_attempts=3))
    delivery.run_once()
    _drive(delivery, clock, 100)
    rows = outbox_rows(db_url)
    assert [(r.state, r.attempts) for r in rows] == [("dead", 3), ("dead", 3)]
    assert all("HTTP 500" in (r.last_error or "") for r in rows)
    assert len(receiver.received) == 6
    assert [action for _, action, _ in audit(db_url)] == ["notification_failed"] * 2


def test_dead_after_the_age_limit(db_url: str, receiver: WebhookReceiver) -> None:
    receiver.respond = lambda _r: 503
    clock = Clock(datetime.now(UTC))
    enqueue(db_url, 1, target=receiver.url)  # created_at = the database's now(), due at once
    delivery = _delivery(db_url, clock, policy=RetryPolicy(max_age=timedelta(minutes=1), max_attempts=100))
    delivery.run_once()
    _drive(delivery, clock, 180, step=5)
    (row,) = outbox_rows(db_url)
    assert row.state == "dead" and 4 <= row.attempts <= 6  # 0, 5, 15, 35, 75 s: the first failure past 60 s


def test_simulated_alerts_never_reach_the_channel(db_url: str, receiver: WebhookReceiver) -> None:
    clock = Clock()
    enqueue(db_url, 2, target=receiver.url, payload=lambda a: {"simulated": True, "alert": {"id": a}}, now=clock())
    enqueue(db_url, 1, target=receiver.url, alert={"simulated": True}, now=clock())  # the alert row says so
    enqueue(db_url, 1, target="http://127.0.0.1:9/real", now=clock())
    delivery = _delivery(db_url, clock)
    assert delivery.run_once() == 4
    _drive(delivery, clock, 60, step=10)
    assert receiver.received == []
    rows = outbox_rows(db_url)
    assert [(r.state, r.last_error) for r in rows[:3]] == [("sent", outbox.SUPPRESSED)] * 3
    assert rows[3].state == "pending"  # the real one is tried (nothing listens on port 9)
    assert [action for _, action, _ in audit(db_url)] == ["notification_suppressed"] * 3
    with psycopg.connect(db_url) as conn:
        assert outbox.counts(conn, clock()).suppressed == 3


def test_care_notifications_carry_the_room_never_a_name(db_url: str, receiver: WebhookReceiver) -> None:
    clock = Clock()

    def leaky(alert_id: int) -> dict[str, object]:  # an engine bug: a name where none belongs
        body = care_payload(alert_id)
        body["where"] = {**body["where"], "name": "Mrs Edith Jones"}
        body["resident_name"] = "Edith Jones"
        return body

    enqueue(db_url, 1, target=receiver.url, route="care-team", payload=leaky, now=clock())
    _delivery(db_url, clock).run_once()
    (request,) = receiver.ok()
    assert b"Jones" not in request.body and b"Edith" not in request.body
    assert request.json["where"] == {"care_room": "12", "care_group": "Oak House"}
    assert request.json["alert"]["category"] == "fall"
    assert request.signature_ok is True  # signed after minimising


def test_two_delivery_loops_at_once_never_double_send(db_url: str, receiver: WebhookReceiver) -> None:
    def slow_ok(_r: Received) -> int:
        time.sleep(0.003)
        return 200

    receiver.respond = slow_ok
    keys = enqueue(db_url, 120, target=receiver.url)
    wall = lambda: datetime.now(UTC)  # noqa: E731
    loops = [Delivery(lambda: psycopg.connect(db_url), [WebhookNotifier(secret=SECRET)], clock=wall) for _ in range(2)]
    handled = [0, 0]
    barrier = threading.Barrier(2)

    def run(n: int) -> None:
        barrier.wait()
        while count := loops[n].run_once():
            handled[n] += count

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert receiver.keys() == keys
    assert len(receiver.received) == 120  # no request twice, not even a failed one
    assert sum(handled) == 120
    assert all(r.state == "sent" and r.attempts == 1 for r in outbox_rows(db_url))


def test_run_wakes_on_enqueue_and_stops(db_url: str, receiver: WebhookReceiver) -> None:
    """With LISTEN, a new row is delivered at once, not at the next poll (30 s here)."""
    wall = lambda: datetime.now(UTC)  # noqa: E731
    delivery = Delivery(
        lambda: psycopg.connect(db_url), [WebhookNotifier(secret=SECRET)], clock=wall, poll=30, listen=db_url
    )
    stop = threading.Event()
    thread = threading.Thread(target=delivery.run, args=(stop,))
    thread.start()
    try:
        time.sleep(0.3)  # the loop is asleep on LISTEN
        started = time.monotonic()
        (key,) = enqueue(db_url, 1, target=receiver.url)
        wait_until(lambda: receiver.keys() == [key], timeout=10, what="the webhook")
        assert time.monotonic() - started < 2
    finally:
        stop.set()
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("SELECT pg_notify(%s, '')", (outbox.CHANNEL,))  # wake it to see the stop
        thread.join(35)
    assert not thread.is_alive()


def test_run_rides_out_a_database_it_cannot_reach(db_url: str, receiver: WebhookReceiver) -> None:
    """The loop logs a failed pass and tries again; the rows wait in the database meanwhile."""
    attempts = [0]

    def connect() -> psycopg.Connection:
        attempts[0] += 1
        if attempts[0] <= 2:
            return psycopg.connect("host=127.0.0.1 port=1 connect_timeout=2")  # nothing listens there
        return psycopg.connect(db_url)

    (key,) = enqueue(db_url, 1, target=receiver.url)
    wall = lambda: datetime.now(UTC)  # noqa: E731
    delivery = Delivery(connect, [WebhookNotifier(secret=SECRET)], clock=wall, poll=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=delivery.run, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: receiver.keys() == [key], timeout=20, what="delivery after the outage")
    finally:
        stop.set()
        thread.join(10)
    assert attempts[0] == 3  # two refused connections, then one connection kept for every later pass
