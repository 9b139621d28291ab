"""The delivery loop: sends what the outbox holds, retries with exponential backoff, gives up after a limit.

Why a loop of its own: delivery is I/O against channels that can be slow or down, and evaluation must
never wait for them (DESIGN.md). The engine only writes outbox rows; this loop, in any number of
processes, sends them.

Guarantees (store/outbox.py has the claim pattern):

- **Nothing lost.** A row stays `pending` until a channel accepted it or a limit declared it dead; a
  channel that is down, a database outage or a restart only delays it.
- **Nothing sent twice in normal operation.** Rows are claimed with `FOR UPDATE SKIP LOCKED` and a
  lease, so two loops never send one row; it is marked sent right after the channel accepts it.
- **At-least-once when a crash makes it unavoidable.** A process killed after the channel accepted a
  row but before it was marked sent sends it again when the lease ends, with the same
  `idempotency_key` in the body (and the `X-Lorawatch-Idempotency-Key` header, and the email's
  Message-ID), so the receiver can drop the repeat.
- **Simulated alerts never reach a real channel.** A row whose payload has `"simulated": true` (or whose
  alert row is simulated) is marked `sent` with `last_error = 'simulated: not delivered'`
  (store.outbox.SUPPRESSED) and an `alert_log` entry `notification_suppressed`, without calling any
  notifier: recorded, visibly not delivered, and never retried.
- **Care payloads carry no names.** Keys that can hold a name (alerts.notifiers.NAME_KEYS) are removed
  from a care alert's payload before any notifier sees it; the email renders an allowlist anyway.

Time comes from the `clock` callable (the wall clock live, a driven clock in tests and replay): this
module never reads the system time, so a test can make a webhook "down for a minute" without waiting one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, ExitStack, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from alerts.notifiers.base import (
    DeliveryError,
    Message,
    Notifier,
    PermanentFailure,
    TemporaryFailure,
    is_care,
    without_names,
)
from store import outbox
from store.records import OutboxRow

log = logging.getLogger(__name__)

Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try again and when to give up.

    After the n-th failed attempt the next one is `first_delay x 2^(n-1)` later, capped at
    `max_delay` (defaults: 5 s, 10 s, 20 s, ... 10 min, 10 min, ...). A row is dead after
    `max_attempts` attempts or once a failure happens `max_age` after it was enqueued, whichever comes
    first (at the defaults, 24 h comes first: about 150 attempts fit in a day), or at once on a
    permanent failure. `lease` is how long a claimed row is kept from other loops: it must be longer
    than the slowest send (timeouts are per network operation, so leave a wide margin)."""

    first_delay: timedelta = timedelta(seconds=5)
    max_delay: timedelta = timedelta(minutes=10)
    max_attempts: int = 200
    max_age: timedelta = timedelta(hours=24)
    lease: timedelta = timedelta(minutes=2)

    def __post_init__(self) -> None:
        if self.first_delay <= timedelta(0) or self.max_delay < self.first_delay:
            raise ValueError("RetryPolicy needs 0 < first_delay <= max_delay")
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.lease <= timedelta(0):
            raise ValueError("RetryPolicy.lease must be positive")

    def delay(self, attempts: int) -> timedelta:
        """How long to wait after the `attempts`-th failed attempt (1-based)."""
        exponent = min(max(attempts - 1, 0), 40)  # 2^40 x 5 s is far past any cap; keeps the float finite
        delay: timedelta = self.first_delay * (2**exponent)
        return min(delay, self.max_delay)

    def gives_up(self, row: OutboxRow, now: datetime) -> bool:
        """True when the attempt that just failed was the last one allowed."""
        return row.attempts >= self.max_attempts or now - row.created_at >= self.max_age


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: str  # sent, suppressed, failed
    note: str | None = None
    error: DeliveryError | None = None


def body_of(row: OutboxRow) -> dict[str, Any]:
    """What is sent for `row`: its payload, without name-like keys if it is a care alert, with
    `idempotency_key` set to the row's (added when the engine left it out)."""
    body = without_names(row.payload) if is_care(row.payload) else dict(row.payload)
    body["idempotency_key"] = row.idempotency_key
    return body


class Delivery:
    """Delivers due outbox rows through `notifiers` (one per channel).

    `connect()` gives a connection as a context manager (`lambda: psycopg.connect(url)`, or a pool's
    `pool.connection`); one is held per `run_once` pass, each claim and each outcome committed on its
    own. Up to `concurrency` rows are sent at once, in threads, so one slow channel does not hold up
    the others. `listen` (a conninfo) makes `run` wake on the engine's NOTIFY instead of only polling
    every `poll` seconds."""

    def __init__(
        self,
        connect: Connect,
        notifiers: Iterable[Notifier] | Mapping[str, Notifier],
        *,
        clock: Callable[[], datetime],
        policy: RetryPolicy | None = None,
        concurrency: int = 4,
        poll: float = 1.0,
        listen: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._connect = connect
        self.notifiers: dict[str, Notifier] = (
            dict(notifiers) if isinstance(notifiers, Mapping) else {n.channel: n for n in notifiers}
        )
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.concurrency = concurrency
        self.poll = poll
        self._listen = listen

    # --- one pass ---------------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> int:
        """Deliver every row due at `now` (default: the clock's time) and record each outcome, on a
        connection of its own from `connect()`.

        Returns how many rows were handled (sent, suppressed or failed). Rows that become due while
        the pass runs wait for the next pass. Outcome times (sent_at, the next attempt) come from the
        clock when each send finishes."""
        with self._connect() as conn:
            return self.deliver_due(conn, now)

    def deliver_due(self, conn: psycopg.Connection[Any], now: datetime | None = None) -> int:
        """`run_once` on a connection the caller holds (not in a transaction; each claim and each
        outcome is committed on it)."""
        due_at = self.clock() if now is None else now
        handled = 0
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="lorawatch-delivery") as pool:
            inflight: dict[Future[_Outcome], OutboxRow] = {}
            more = True
            try:
                while True:
                    free = self.concurrency - len(inflight)
                    if more and free > 0:
                        rows = outbox.claim_due(conn, due_at, free, lease=self.policy.lease)
                        conn.commit()  # the lease counts from here: send only after this commit
                        more = len(rows) == free
                        for row in rows:
                            inflight[pool.submit(self._attempt, row)] = row
                    if not inflight:
                        break
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    for future in done:
                        row = inflight.pop(future)
                        self._record(conn, row, future.result())
                        conn.commit()
                        handled += 1
            except BaseException:
                # Sends already started finish in their threads; their rows stay leased and are sent
                # again after the lease (at-least-once). Nothing more is claimed.
                for future in inflight:
                    future.cancel()
                raise
        return handled

    def _attempt(self, row: OutboxRow) -> _Outcome:
        """Runs in a worker thread: no database access here, only the notifier."""
        if row.simulated:
            return _Outcome("suppressed")
        notifier = self.notifiers.get(row.channel)
        if notifier is None:
            return _Outcome("failed", error=PermanentFailure(f"no notifier configured for channel {row.channel!r}"))
        message = Message(
            outbox_id=row.id,
            alert_id=row.alert_id,
            event=row.event,
            channel=row.channel,
            route=row.route,
            target=row.target,
            body=body_of(row),
            idempotency_key=row.idempotency_key,
            attempt=row.attempts,
            now=self.clock(),
        )
        try:
            return _Outcome("sent", note=notifier.send(message))
        except DeliveryError as exc:
            return _Outcome("failed", error=exc)
        except Exception as exc:  # a bug in a notifier must not lose the row: retry it like an outage
            log.exception("notifier %s failed unexpectedly on outbox row %s", row.channel, row.id)
            return _Outcome("failed", error=TemporaryFailure(f"internal error: {type(exc).__name__}: {exc}"))

    def _record(self, conn: psycopg.Connection[Any], row: OutboxRow, outcome: _Outcome) -> None:
        at = self.clock()
        if outcome.kind == "suppressed":
            outbox.mark_suppressed(conn, row.id, at)
            log.info("outbox %s (%s, route %s): simulated, not delivered", row.id, row.channel, row.route)
            return
        if outcome.kind == "sent":
            outbox.mark_sent(conn, row.id, at, note=outcome.note)
            log.info(
                "outbox %s delivered by %s via route %s (attempt %s)", row.id, row.channel, row.route, row.attempts
            )
            return
        error = outcome.error
        assert error is not None
        reason = error.reason[:1000]
        if error.permanent or self.policy.gives_up(row, at):
            outbox.mark_failed(conn, row.id, reason, at, dead=True, attempt=row.attempts)
            log.error(
                "outbox %s (%s, route %s) is dead after %s attempt(s): %s",
                row.id,
                row.channel,
                row.route,
                row.attempts,
                reason,
            )
            return
        delay = self.policy.delay(row.attempts)
        if error.retry_after is not None:
            delay = min(max(delay, timedelta(seconds=error.retry_after)), self.policy.max_delay)
        outbox.mark_failed(conn, row.id, reason, at + delay, dead=False, attempt=row.attempts)
        log.warning(
            "outbox %s (%s, route %s) attempt %s failed, next in %ss: %s",
            row.id,
            row.channel,
            row.route,
            row.attempts,
            round(delay.total_seconds()),
            reason,
        )

    # --- the loop ---------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set: a pass, then sleep until woken by an enqueue (with `listen`) or
        `poll` seconds pass (retries come due by the poll). One connection is kept across passes. A
        database outage is logged and waited out; nothing is lost meanwhile, the rows are in the
        database."""
        waker: outbox.OutboxWaker | None = None
        held = ExitStack()
        conn: psycopg.Connection[Any] | None = None
        try:
            while not stop.is_set():
                try:
                    if waker is None and self._listen is not None:
                        waker = outbox.OutboxWaker(self._listen)  # LISTEN before the pass: no wake-up missed
                    if conn is None:
                        conn = held.enter_context(self._connect())
                    self.deliver_due(conn)
                except psycopg.Error as exc:
                    log.warning("delivery pass failed (will retry in %ss): %s", self.poll, exc)
                    _close(waker)
                    waker = None
                    with suppress(psycopg.Error):
                        held.close()
                    conn = None
                    stop.wait(self.poll)
                    continue
                if waker is None:
                    stop.wait(self.poll)
                    continue
                try:
                    waker.wait(self.poll)
                except psycopg.Error:
                    _close(waker)
                    waker = None
        finally:
            _close(waker)
            with suppress(psycopg.Error):
                held.close()


def _close(waker: outbox.OutboxWaker | None) -> None:
    if waker is not None:
        with suppress(psycopg.Error):
            waker.close()


__all__ = ["Connect", "Delivery", "RetryPolicy", "body_of"]
