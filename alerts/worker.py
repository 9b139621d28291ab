"""The alert worker (`lorawatch alerts run`): evaluates every committed change as it lands, runs the
clock jobs, and delivers the outbox.

Shape: the main loop drains the change feed through the engine's durable cursor and then sleeps on
`LISTEN lorawatch_changes` (with a short timeout, so a missed NOTIFY costs at most that long: the
cursor, not the wake-up, decides what is read). APScheduler runs the clock pass (`Engine.tick`) on
its own thread and connection every `tick_s`, with coalescing, so a slow pass is never run twice at
once. Delivery, when given, runs on a third thread. Any of them can die with the process: everything
they had not committed is simply done again by the next worker.

The notices people's actions hand over through the API (`alert_notices`: the API cannot write the
outbox) are turned into notifications when the worker starts and on every clock pass.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler

from alerts.engine import Engine
from alerts.rules import RuleSet
from store.feed import Waker
from store.runtime import quiet_gc

log = logging.getLogger(__name__)

#: Changes read per transaction: large enough to batch a backfill, small enough to commit often.
BATCH = 200
#: How long the loop sleeps on LISTEN before looking at the feed anyway.
IDLE_S = 1.0
#: Reconnect backoff after the database went away: start, ceiling (seconds).
RETRY = (0.5, 10.0)


def wall_clock() -> datetime:
    return datetime.now(UTC)


class AlertWorker:
    def __init__(
        self,
        database_url: str,
        rules: RuleSet,
        *,
        env: dict[str, str] | None = None,
        clock: Callable[[], datetime] = wall_clock,
        tick_s: float = 10.0,
        deliver: Callable[[threading.Event], None] | None = None,
    ) -> None:
        self.database_url = database_url
        self.rules = rules
        self.env = env or {}
        self.clock = clock
        self.tick_s = tick_s
        self.deliver = deliver
        self.evaluated = 0
        self.ready = threading.Event()

    def _engine(self) -> Engine:
        return Engine(self.rules, self.clock, env=self.env)

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set."""
        quiet_gc()
        engine = self._engine()
        scheduler = BackgroundScheduler(timezone=UTC)
        ticker = _Ticker(self.database_url, self._engine())
        scheduler.add_job(ticker, "interval", seconds=self.tick_s, max_instances=1, coalesce=True, id="tick")
        delivery: threading.Thread | None = None
        if self.deliver is not None:
            delivery = threading.Thread(target=self.deliver, args=(stop,), name="delivery", daemon=True)
        scheduler.start()
        if delivery is not None:
            delivery.start()
        delay = RETRY[0]
        try:
            while not stop.is_set():
                try:
                    self._loop(engine, stop)
                except psycopg.OperationalError as exc:  # the database went away: nothing uncommitted counts
                    log.warning("alert_worker_db_unavailable", extra={"error": str(exc).strip(), "retry_in_s": delay})
                    stop.wait(delay)
                    delay = min(delay * 2, RETRY[1])
        finally:
            scheduler.shutdown(wait=True)
            ticker.close()
            if delivery is not None:
                delivery.join(10)

    def _loop(self, engine: Engine, stop: threading.Event) -> None:
        waker = Waker(self.database_url)
        try:
            with psycopg.connect(self.database_url) as conn:
                # Notices handed over while no worker ran (a resolve through the API) go out first.
                engine.send_notices(conn)
                self.ready.set()
                log.info("alert_worker_started", extra={"rules": len(self.rules.rules), "tick_s": self.tick_s})
                while not stop.is_set():
                    n = engine.process(conn, BATCH)
                    self.evaluated += n
                    if n < BATCH:
                        waker.wait(IDLE_S)
        finally:
            waker.close()


#: Seconds between the clock's sweeps for devices without an offline state.
SWEEP_S = 300.0


class _Ticker:
    """The clock job: one connection of its own, reopened after an error."""

    def __init__(self, database_url: str, engine: Engine) -> None:
        self.database_url = database_url
        self.engine = engine
        self.conn: psycopg.Connection | None = None
        self.swept_at = -math.inf

    def __call__(self) -> None:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(self.database_url)
            # The sweep (devices the engine has never evaluated) at start and then every few minutes:
            # a device registered but never heard, or heard before the engine ran, still goes offline.
            sweep = time.monotonic() - self.swept_at >= SWEEP_S
            self.engine.send_notices(self.conn)  # people's resolves through the API (alert_notices)
            self.engine.tick(self.conn, sweep=sweep)
            if sweep:
                self.swept_at = time.monotonic()
        except Exception:  # the next tick tries again; nothing half-done was committed
            log.exception("alert_clock_pass_failed")
            self.close()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None
