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

import contextlib
import multiprocessing
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection

import psycopg

from alerts.engine import Engine
from alerts.rules import DeviceLike, OfflineRule, RuleSet
from alerts.states import DatabaseStates, MemoryStates
from ingest.pipeline import Limits, Processor, Skipped
from simulators.capture import Message
from store import alerts as db
from store import queries
from store.records import Alert, DeadLetter, UplinkRecord, WriteResult
from store.runtime import quiet_gc
from store.writer import IngestWriter, device_models

#: Messages per batch (one writer transaction, then one engine pass).
BATCH = 2000
#: The longest data time one batch may span, whatever the rules. A pass orders its observations by data
#: time, and a live pass holds seconds of traffic: the longer a batch, the more of what arrived late
#: (a fall re-sent with the device's earlier timestamp) it reorders ahead of what came first. Doubling
#: this made no replay faster (a pass's cost is per reading) and moved a fall's opening time.
MAX_SPAN = timedelta(minutes=15)
MIN_SPAN = timedelta(minutes=1)
#: In two processes, batches span a fraction of the horizon, so ingest can run that many batches ahead.
PIPELINE = 4


def horizon(rules: RuleSet, devices: Iterable[DeviceLike]) -> timedelta:
    """The shortest data time after an observation in which any rule could come due on the clock (a
    `for`, a `keep_firing_for`, a device's silence, a welfare window), within [MIN_SPAN, MAX_SPAN]: a
    batch no longer than this cannot hold a reading after a moment the clock should have judged.

    Over the rules as each registered device has them (its overrides applied; a rule that judges no
    device does not count), and an offline rule's span is each device's own silence (its missed
    intervals and grace, from its own interval where the registry gives one): a device that reports
    every 3 minutes can go silent within 15, and an override can shorten any rule."""
    spans = [MAX_SPAN]
    for device in devices:
        for rule in rules.rules_for(device):
            if isinstance(rule, OfflineRule):
                spans.append(rule.silent_after(device.attributes))
                continue
            for name in ("for_", "keep_firing_for", "window", "min_for"):
                value = getattr(rule, name, None)
                if isinstance(value, timedelta) and value > timedelta(0):
                    spans.append(value)
    return max(MIN_SPAN, min(spans))


def _span(conn: psycopg.Connection, rules: RuleSet, tick: timedelta | None) -> timedelta:
    """The batch span: `tick` if given, else the `horizon` of the registry on `conn` (its transaction
    committed: the engine's passes are transactions of their own)."""
    if tick is not None:
        return tick
    with conn.transaction():
        return horizon(rules, queries.devices(conn))


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
    #: batches the engine found straddling a clock pass (the two-process replay's rules failed)
    straddled: int = 0
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
    parallel: bool = True,
) -> ScoreRun:
    """Feed `messages` (in time order) through ingest and the alert engine on `conn` (a scratch,
    migrated database holding the device registry). Returns what happened and every alert raised.

    `as_live`: the engine as the live worker runs it (rule states read and written in the database by
    every pass, devices read every pass), several times slower; a test holds the two to the same
    alerts. `parallel` (not with `as_live`): ingest runs in a second process, ahead of the engine by
    no more than the clock allows (see `_pipelined`)."""
    quiet_gc()  # the engine's states are a large live heap: a fifth of its CPU went to the collector
    if parallel and not as_live:
        return _pipelined(conn, messages, rules, batch=batch, tick=tick, progress=progress)
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
        _, counts = _ingest(processor, writer, pending)
        run.stored += counts[1]
        run.dead_lettered += counts[2]
        run.skipped += counts[3]
        clock.now = max(clock.now, _time(pending[-1]))
        while engine.process(conn, 500):
            pass
        run.messages += len(pending)
        if progress is not None:
            progress(len(pending))
        pending.clear()

    span = _span(conn, rules, tick)
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
    if run.last is not None:  # what came due by the last message
        _run_clock(conn, engine, clock, engine.next_due(conn), run.last, inclusive=True)
    return _finish(conn, states, run, started)


def _finish(conn: psycopg.Connection, states: DatabaseStates, run: ScoreRun, started: float) -> ScoreRun:
    """The states written (the scored database holds what a live engine would have left), and every
    alert raised."""
    with conn.transaction():
        states.flush(conn)
    run.alerts = sorted(db.list_alerts(conn, open_only=False, limit=10_000_000), key=lambda a: (a.opened_at, a.id))
    run.seconds = time.perf_counter() - started
    return run


def _time(message: Message) -> datetime:
    return datetime.fromtimestamp(message.time_ns / 1e9, UTC)


# --- two processes --------------------------------------------------------------------------------
#
# Ingest (reading the capture, decoding, writing each batch and its change) runs in a forked child on a
# connection of its own; the engine evaluates the batches in this process as their changes commit, in
# the order the child sent them. The two use both cores and the results are those of the one-process
# loop above, because the child keeps to two rules:
#
# - it never writes a message later than a due time it knows of without first asking the engine to run
#   the clock to that message ("tick"), so no batch straddles a clock pass. The engine tells it the next
#   `KNOWN` due times with every answer, so a tick is a message in the queue, not a wait;
# - it never writes a message later than `span` after the earliest data time from which something the
#   engine has not finished can make a state due: a batch's first message, a clock run's first due
#   time. Whatever either makes due is at least `span` after that (`horizon`), so it cannot fall inside
#   anything written meanwhile.
#
# The engine counts the batches that straddle a due time anyway (`ScoreRun.straddled`; tests hold it
# to zero).

#: How many upcoming due times the engine tells the ingest process with each answer.
KNOWN = 64
#: The ingest process reads the engine's answers at least every this many messages, and whenever one
#: of the two rules might act on what it knows.
POLL_EVERY = 64


def _pipelined(
    conn: psycopg.Connection,
    messages: Iterable[Message],
    rules: RuleSet,
    *,
    batch: int,
    tick: timedelta | None,
    progress: Callable[[int], None] | None,
) -> ScoreRun:
    started = time.perf_counter()
    clock = ReplayClock()
    states = MemoryStates()
    engine = Engine(rules, clock, notify=False, states=states, fixed_registry=True)
    span = _span(conn, rules, tick)
    dues = engine.upcoming(conn, KNOWN)
    due = dues[0] if dues else None
    context = multiprocessing.get_context("fork")  # the child takes the message iterator as it is
    inbox, child_out = context.Pipe(duplex=False)
    child_in, outbox = context.Pipe(duplex=False)
    child = context.Process(
        target=_ingest_child,
        args=(conn.info.dsn, messages, batch, span, dues, child_out, child_in),
        name="lorawatch-score-ingest",
        daemon=True,
    )
    child.start()
    child_out.close()
    child_in.close()
    run = ScoreRun()
    try:
        while True:
            try:
                message = inbox.recv()
            except EOFError:
                raise RuntimeError(f"the scoring ingest process died (exit code {child.exitcode})") from None
            kind = message[0]
            if kind == "error":
                raise RuntimeError(f"the scoring ingest process failed:\n{message[1]}")
            if kind == "batch":
                _, change_id, first, last, counts = message
                due = _run_clock(conn, engine, clock, due, first, inclusive=False)
                if due is not None and due < last:
                    run.straddled += 1
                clock.now = max(clock.now, last)
                if change_id is not None:
                    while engine.process(conn, 500, upto=change_id) == 500:  # one change a batch: one pass
                        pass
                dues = engine.upcoming(conn, KNOWN)
                due = dues[0] if dues else None
                _tell(outbox, ("done", dues))
                run.messages += counts[0]
                run.stored += counts[1]
                run.dead_lettered += counts[2]
                run.skipped += counts[3]
                run.first = run.first or first
                run.last = last
                if progress is not None:
                    progress(counts[0])
            elif kind == "tick":
                _run_clock(conn, engine, clock, due, message[1], inclusive=False)
                dues = engine.upcoming(conn, KNOWN)
                due = dues[0] if dues else None
                _tell(outbox, ("ticked", dues))
            else:  # "end": what came due by the last message
                if run.last is not None:
                    _run_clock(conn, engine, clock, due, run.last, inclusive=True)
                break
        child.join()
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        inbox.close()
        outbox.close()
    return _finish(conn, states, run, started)


def _tell(pipe: Connection, message: tuple[object, ...]) -> None:
    """An answer to the ingest process; once it has sent its last batch it has gone, and needs none."""
    with contextlib.suppress(BrokenPipeError):
        pipe.send(message)


def _run_clock(
    conn: psycopg.Connection, engine: Engine, clock: ReplayClock, due: datetime | None, until: datetime, *,
    inclusive: bool,
) -> datetime | None:  # fmt: skip
    """Clock passes at every due time before `until` (or at it, `inclusive`); returns the next due."""
    while due is not None and (due < until or (inclusive and due == until)):
        clock.now = max(clock.now, due)
        engine.tick(conn, due)
        due = engine.next_due(conn)
    return due


def _ingest_child(
    dsn: str,
    messages: Iterable[Message],
    batch: int,
    span: timedelta,
    dues: list[datetime],
    out: Connection,
    back: Connection,
) -> None:
    """The ingest half: decode and write batches, tell the engine of each, keep to the two rules."""
    try:
        with psycopg.connect(dsn) as conn:
            models = device_models(conn)
            conn.commit()
            processor = Processor(lambda app, dev: models.get((app, dev)) or models.get(("", dev)), Limits())
            writer = IngestWriter(conn)
            # For each batch and clock run sent and not yet answered: the earliest data time from which
            # it can make something due (rule two).
            waiting: deque[datetime] = deque()
            pending: list[Message] = []
            known = dues  # the engine's next due times, soonest first
            complete = len(dues) < KNOWN  # and no others
            ticked: datetime | None = None  # clock runs sent up to here

            def answer() -> None:
                """The engine finished a batch or a clock run, and says what is due next."""
                nonlocal known, complete
                _, fresh = back.recv()
                waiting.popleft()
                complete = len(fresh) < KNOWN
                known = fresh if ticked is None else [d for d in fresh if d >= ticked]  # older: sent

            def flush() -> None:
                if not pending:
                    return
                result, counts = _ingest(processor, writer, pending)
                out.send(("batch", result.change_id, _time(pending[0]), _time(pending[-1]), counts))
                waiting.append(_time(pending[0]))
                pending.clear()

            for n, message in enumerate(messages):
                at = _time(message)
                due_now = known[0] < at if known else not complete
                if n % POLL_EVERY == 0 or due_now or (waiting and at > min(waiting) + span):
                    while back.poll():  # the answers already here (reading them at every message costs 3 %)
                        answer()
                if pending and (len(pending) >= batch or at - _time(pending[0]) >= span / PIPELINE):
                    flush()
                while waiting and at > min(waiting) + span:  # rule two: let the engine catch up
                    flush()
                    answer()
                if not known and not complete:  # past every due time it told of: ask for more
                    flush()
                    while waiting:
                        answer()
                    out.send(("tick", at if ticked is None else ticked))
                    waiting.append(at)
                    answer()
                if known and known[0] < at:  # rule one: the clock runs before this message
                    flush()
                    out.send(("tick", at))
                    waiting.append(known[0])
                    ticked = at
                    known = [d for d in known if d >= at]
                pending.append(message)
            flush()
            out.send(("end",))
    except BaseException:
        out.send(("error", traceback.format_exc()))


def _ingest(processor: Processor, writer: IngestWriter, pending: list[Message]) -> tuple[WriteResult, tuple[int, ...]]:
    """Decode and write one batch; (the write's result, (messages, stored, dead-lettered, skipped))."""
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
    return result, (len(pending), result.stored, result.dead_lettered, result.skipped)
