"""Replay a capture through the live code in the data's own time: `lorawatch score`'s engine room.

The same pieces as live, wired in one process and one connection: the ingest `Processor` (decoding,
normalisation, validation), the `IngestWriter` (natural keys, the change feed) and the alert `Engine`
(evaluators, lifecycle, outbox). What differs is only the clock: it is the data's. Messages are taken
in time order in batches; after each batch the engine drains the change feed, then the clock passes
run at every `tick` of data time up to the batch's end, so a rule that needs no new data (offline,
`for`, `keep_firing_for`) fires at the data time it would have fired live. Nothing is delivered: the
scratch database's outbox simply fills.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from alerts.engine import Engine
from alerts.rules import RuleSet
from ingest.pipeline import Limits, Processor, Skipped
from simulators.capture import Message
from store import alerts as db
from store.records import Alert, DeadLetter, UplinkRecord
from store.writer import IngestWriter, device_models

#: Messages per batch (one writer transaction, then one engine pass).
BATCH = 2000
#: Data time between clock passes.
TICK = timedelta(minutes=1)


@dataclass
class ReplayClock:
    """The engine's clock in replay: set by the replay loop to the data time it has reached."""

    now: datetime = datetime(1970, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class ScoreRun:
    messages: int = 0
    stored: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    seconds: float = 0.0
    first: datetime | None = None
    last: datetime | None = None
    alerts: list[Alert] = field(default_factory=list)


def replay(
    conn: psycopg.Connection,
    messages: Iterable[Message],
    rules: RuleSet,
    *,
    batch: int = BATCH,
    tick: timedelta = TICK,
    progress: Callable[[int], None] | None = None,
) -> ScoreRun:
    """Feed `messages` (in time order) through ingest and the alert engine on `conn` (a scratch,
    migrated database holding the device registry). Returns what happened and every alert raised."""
    started = time.perf_counter()
    models = device_models(conn)
    conn.commit()
    processor = Processor(lambda app, dev: models.get((app, dev)) or models.get(("", dev)), Limits())
    writer = IngestWriter(conn)
    clock = ReplayClock()
    engine = Engine(rules, clock, notify=False)
    run = ScoreRun()
    next_tick: datetime | None = None
    pending: list[Message] = []

    def flush() -> None:
        """Write what is pending and let the engine evaluate it, at the data time of its last message."""
        if not pending:
            return
        records: list[UplinkRecord] = []
        dead: list[DeadLetter] = []
        skipped: dict[str, int] = {}
        for m in pending:
            raw = m.payload.encode() if isinstance(m.payload, str) else m.payload
            out = processor.process(m.topic, raw, _time(m))
            if isinstance(out, UplinkRecord):
                records.append(out)
            elif isinstance(out, DeadLetter):
                dead.append(out)
            elif isinstance(out, Skipped):
                skipped[out.kind] = skipped.get(out.kind, 0) + 1
        result = writer.write(records, dead, skipped)
        run.stored += result.stored
        run.dead_lettered += result.dead_lettered
        run.skipped += result.skipped
        clock.now = max(clock.now, _time(pending[-1]))
        while engine.process(conn, 500):
            pass
        run.messages += len(pending)
        if progress is not None:
            progress(len(pending))
        pending.clear()

    for message in messages:
        at = _time(message)
        if run.first is None:
            run.first = at
            next_tick = at + tick
        assert next_tick is not None
        # Everything before a tick is written and evaluated before the clock pass at that tick runs, so
        # the clock never judges a device silent whose uplink is still waiting in this batch.
        while at >= next_tick:
            flush()
            clock.now = next_tick
            engine.tick(conn, next_tick)
            next_tick += tick
        pending.append(message)
        run.last = at
        if len(pending) >= batch:
            flush()
    flush()
    if run.last is not None:  # a last clock pass at the last message's time
        clock.now = max(clock.now, run.last)
        engine.tick(conn, clock.now)
    run.alerts = sorted(db.list_alerts(conn, open_only=False, limit=10_000_000), key=lambda a: (a.opened_at, a.id))
    run.seconds = time.perf_counter() - started
    return run


def _time(message: Message) -> datetime:
    return datetime.fromtimestamp(message.time_ns / 1e9, UTC)
