"""Replay a capture through the live code in the data's own time: `lorawatch score`'s engine room.

The same pieces as live, wired in one process and one connection: the ingest `Processor` (decoding,
normalisation, validation), the `IngestWriter` (natural keys, the change feed) and the alert `Engine`
(evaluators, lifecycle, outbox). What differs is only the clock: it is the data's. Messages are taken
in time order in batches; after each batch the engine drains the change feed, and a clock pass runs at
each data time some rule state is due (the engine keeps each state's due time), so a rule that needs
no new data (offline, `for`, `keep_firing_for`, a welfare spell) fires at the data time it would have
fired live, and the clock costs nothing while nothing is due. The engine keeps its rule states in
memory (alerts/states.py: it is alone on the scratch database) and writes them at the end. Nothing is
delivered: no outbox row is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from alerts.engine import Engine
from alerts.rules import RuleSet
from alerts.states import DatabaseStates, MemoryStates
from ingest.pipeline import Limits, Processor, Skipped
from simulators.capture import Message
from store import alerts as db
from store.records import Alert, DeadLetter, UplinkRecord
from store.writer import IngestWriter, device_models

#: Messages per batch (one writer transaction, then one engine pass).
BATCH = 2000
#: The longest data time one batch may span, whatever the rules.
MAX_SPAN = timedelta(minutes=15)
MIN_SPAN = timedelta(minutes=1)


def horizon(rules: RuleSet) -> timedelta:
    """The shortest data time after an observation in which any rule could come due on the clock
    (a `for`, a silence, a welfare window), within [MIN_SPAN, MAX_SPAN]: a batch no longer than this
    cannot hold a reading after a moment the clock should have judged."""
    spans = [MAX_SPAN]
    for rule in rules.rules:
        for name in ("for_", "keep_firing_for", "window", "min_for", "expected_interval"):
            value = getattr(rule, name, None)
            if isinstance(value, timedelta) and value > timedelta(0):
                spans.append(value)
    return max(MIN_SPAN, min(spans))


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
    tick: timedelta | None = None,
    progress: Callable[[int], None] | None = None,
    as_live: bool = False,
) -> ScoreRun:
    """Feed `messages` (in time order) through ingest and the alert engine on `conn` (a scratch,
    migrated database holding the device registry). Returns what happened and every alert raised.

    `as_live`: the engine as the live worker runs it (rule states read and written in the database by
    every pass, devices read every pass), several times slower; a test holds the two to the same
    alerts."""
    started = time.perf_counter()
    models = device_models(conn)
    conn.commit()
    processor = Processor(lambda app, dev: models.get((app, dev)) or models.get(("", dev)), Limits())
    writer = IngestWriter(conn)
    clock = ReplayClock()
    states = DatabaseStates() if as_live else MemoryStates()
    engine = Engine(rules, clock, notify=False, states=states, fixed_registry=not as_live)
    run = ScoreRun()
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

    span = horizon(rules) if tick is None else tick
    batch_start: datetime | None = None
    due = engine.next_due(conn)
    for message in messages:
        at = _time(message)
        if run.first is None:
            run.first = at
        # Everything before a clock pass is written and evaluated first, so the clock never judges a
        # device silent whose uplink is still waiting in this batch; and no batch spans more than the
        # shortest time in which a rule can come due, so nothing in it could have been due meanwhile.
        if pending and (len(pending) >= batch or (batch_start is not None and at - batch_start >= span)):
            flush()
            due = engine.next_due(conn)
        while due is not None and due < at:
            flush()
            clock.now = max(clock.now, due)
            engine.tick(conn, due)
            due = engine.next_due(conn)
        if not pending:
            batch_start = at
        pending.append(message)
        run.last = at
    flush()
    due = engine.next_due(conn)
    while run.last is not None and due is not None and due <= run.last:  # what came due by the last message
        clock.now = max(clock.now, due)
        engine.tick(conn, due)
        due = engine.next_due(conn)
    with conn.transaction():
        states.flush(conn)  # the scored database holds the states a live engine would have left
    run.alerts = sorted(db.list_alerts(conn, open_only=False, limit=10_000_000), key=lambda a: (a.opened_at, a.id))
    run.seconds = time.perf_counter() - started
    return run


def _time(message: Message) -> datetime:
    return datetime.fromtimestamp(message.time_ns / 1e9, UTC)
