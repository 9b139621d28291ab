"""The ingest worker process: decode, normalise and write batches; report what happened.

It runs in a process of its own so that decoding and database work never compete with paho's network
thread for the GIL: the MQTT side stays responsive (TTS drops messages for slow consumers) and the two
halves use both cores.

The parent runs each worker as a one-process `concurrent.futures.ProcessPoolExecutor` whose
initializer is `initialize` (logging, the connection, the Processor, all kept in a module global) and
submits batches to `run_batch`. That standard shape replaces a hand-built pipe protocol: results and
exceptions come back as futures, and a worker that dies (kill -9, OOM) shows up as a
`BrokenProcessPool` that the parent answers by building a new pool and resubmitting.

What a batch may do, and why:
- **It never raises for a message.** Each message is processed (the Processor never raises), then the
  batch is written in one transaction. A database *outage* (`store.writer.Outage`) is retried here, on a
  fresh connection, with backoff (0.2 s doubling to 5 s), for as long as it lasts: the batch is
  answered only once committed, so the parent can acknowledge its QoS 1 messages.
- **A bug costs the batch, not the ingester.** Any other exception is logged with its traceback and
  every message of the batch is dead-lettered with stage `internal` (raw bytes kept), so the batch
  still completes and the stream moves on instead of crashing on the same redelivered batch forever.
- **Oversize messages arrive already cut** to a `SIZE_PREFIX` prefix by the parent (the full message
  is never held in memory past paho's callback), with their original size; they are dead-lettered
  here with stage `size` and a reason that names both sizes. They are not given to the Processor,
  which would see only a prefix and call it bad JSON.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.synchronize import Event as EventType

import psycopg

from ingest.pipeline import Limits, Processor, Skipped
from store.records import DeadLetter, UplinkRecord, WriteResult
from store.runtime import quiet_gc
from store.writer import IngestWriter, Outage, device_models, is_outage, newest_tts

log = logging.getLogger(__name__)

#: Backoff between database reconnect attempts: start, factor, ceiling (seconds).
DB_RETRY = (0.2, 2.0, 5.0)
#: How often the device -> model cache is reloaded, so an admin's assignment takes effect.
MODEL_CACHE_S = 30.0
#: What is kept of a message over the size limit: enough to see what it was, never megabytes.
SIZE_PREFIX = 65536
#: How often an orphaned worker looks for its parent (seconds).
PARENT_POLL_S = 1.0

Item = tuple[str, bytes]


class Stopping(Exception):
    """The ingester is stopping while this batch waits for the database: it stays unacknowledged."""


@dataclass(slots=True)
class Summary:
    """What one batch did; the parent adds these up (small and picklable: it crosses processes)."""

    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    dead_by_stage: dict[str, int] = field(default_factory=dict)
    newest_tts: datetime | None = None
    seconds: float = 0.0
    change_id: int | None = None
    #: messages of this batch that could not be written at all (a bug even in dead-lettering)
    unwritten: int = 0


def topic_device(topic: str) -> tuple[str, str] | None:
    """(application, device) named by a TTS `v3/{app}[@tenant]/devices/{dev}/...` or ChirpStack
    `application/{app}/device/{eui}/event/...` topic; None for any other topic. The tenant is dropped
    and the EUI lower-cased, so a backfilled topic (no tenant) names the same device as a live one."""
    parts = topic.split("/", 4)
    if len(parts) < 4:
        return None
    if parts[0] == "v3" and parts[2] == "devices":
        return parts[1].split("@", 1)[0], parts[3]
    if parts[0] == "application" and parts[2] == "device":
        return parts[1], parts[3].lower()
    return None


def oversize_letter(topic: str, raw: bytes, size: int, limit: int, received_at: datetime) -> DeadLetter:
    """The dead letter for a message of `size` bytes over `limit`, of which `raw` is the kept prefix."""
    device = topic_device(topic)
    return DeadLetter(
        received_at,
        "size",
        f"message of {size} bytes is over the limit of {limit} bytes (LORAWATCH_INGEST_MAX_MESSAGE_BYTES); "
        f"only its first {len(raw)} bytes are kept",
        None,
        topic,
        device[1] if device else None,
        raw,
    )


class BatchWriter:
    """Processes and writes batches on one connection, reconnecting through outages."""

    def __init__(self, database_url: str, limits: Limits | None = None, stopping: EventType | None = None) -> None:
        self.database_url = database_url
        self.limits = limits or Limits()
        self.stopping = stopping
        self._conn: psycopg.Connection | None = None
        self._writer: IngestWriter | None = None
        self._models: dict[tuple[str, str], str] = {}
        self._models_at = 0.0
        self.processor = Processor(self._model_of, self.limits)
        self.newest_tts: datetime | None = None

    def _model_of(self, application_id: str, device_id: str) -> str | None:
        models = self._models
        return models.get((application_id, device_id)) or models.get(("", device_id))

    def _sleep(self, seconds: float) -> None:
        """Back off, or raise Stopping at once if the ingester stops meanwhile."""
        if self.stopping is None:
            time.sleep(seconds)
        elif self.stopping.wait(seconds):
            raise Stopping

    def connect(self, *, retry_all: bool = False) -> None:
        """Connect (retrying with backoff while the database is unavailable) and load the model cache.

        At start only an outage is retried: anything else (a database that does not exist, a schema
        never migrated) is raised, so that `lorawatch ingest` fails at once with the reason. Once
        running (`retry_all`), every failure to connect is retried: the batch in hand is not at fault,
        and dropping it would lose data over what an operator can fix (a revoked password)."""
        delay, factor, ceiling = DB_RETRY
        while True:
            try:
                conn = psycopg.connect(self.database_url, connect_timeout=5)
                self._conn, self._writer = conn, IngestWriter(conn)
                self.newest_tts = later(self.newest_tts, newest_tts(conn))
                conn.commit()
                self._refresh_models(force=True)
                log.info("db_connected")
                return
            except Exception as exc:
                self._close()
                outage = is_outage(exc)
                if not outage and not retry_all:
                    raise
                extra = {"error": str(exc).strip(), "retry_in_s": delay}
                log.log(logging.WARNING if outage else logging.ERROR, "db_unavailable_retrying", extra=extra)
                self._sleep(delay)
                delay = min(delay * factor, ceiling)

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                log.debug("db_close_failed")
        self._conn = self._writer = None

    def _refresh_models(self, *, force: bool = False) -> None:
        if self._conn is None or (not force and time.monotonic() - self._models_at < MODEL_CACHE_S):
            return
        models = device_models(self._conn)
        self._conn.commit()
        self._models.clear()
        self._models.update(models)
        self._models_at = time.monotonic()

    def handle(
        self, items: Sequence[Item], received_at: datetime, oversize: Mapping[int, int] | None = None
    ) -> Summary:
        """Process and write one batch; returns only after it is committed (see the module docstring).

        `oversize` maps the index of each item that was cut to its original size."""
        started = time.perf_counter()
        oversize = oversize or {}
        summary = Summary()
        records: list[UplinkRecord] = []
        dead: list[DeadLetter] = []
        try:
            limit = self.limits.max_message_bytes
            for index, (topic, payload) in enumerate(items):
                size = oversize.get(index)
                if size is not None:
                    dead.append(oversize_letter(topic, payload, size, limit, received_at))
                    continue
                outcome = self.processor.process(topic, payload, received_at)
                if isinstance(outcome, UplinkRecord):
                    records.append(outcome)
                elif isinstance(outcome, DeadLetter):
                    dead.append(outcome)
                elif isinstance(outcome, Skipped):
                    summary.skipped[outcome.kind] = summary.skipped.get(outcome.kind, 0) + 1
            result = self._write(records, dead, summary.skipped)
        except Stopping:
            raise
        except Exception as exc:
            log.exception("ingest_batch_failed_dead_lettering", extra={"messages": len(items)})
            records, summary.skipped = [], {}
            dead = [
                _internal_letter(topic, payload, exc, received_at, len(items))
                if index not in oversize
                else oversize_letter(topic, payload, oversize[index], self.limits.max_message_bytes, received_at)
                for index, (topic, payload) in enumerate(items)
            ]
            self._close()  # start the dead letters on a clean connection, whatever state the bug left
            try:
                result = self._write([], dead, {})
            except Stopping:
                raise
            except Exception:
                log.critical("ingest_batch_unwritable", exc_info=True, extra={"messages": len(items)})
                summary.unwritten = len(items)
                summary.seconds = time.perf_counter() - started
                summary.newest_tts = self.newest_tts
                return summary
        summary.stored, summary.duplicates, summary.dead_lettered = (
            result.stored,
            result.duplicates,
            result.dead_lettered,
        )
        summary.change_id = result.change_id
        for d in [*dead, *result.store_rejects, *result.value_rejects]:
            summary.dead_by_stage[d.stage] = summary.dead_by_stage.get(d.stage, 0) + 1
        newest = max(
            (min(r.uplink.time, received_at) for r in records if r.uplink.source == "tts" and not r.uplink.simulated),
            default=None,
        )
        self.newest_tts = later(self.newest_tts, newest)
        summary.newest_tts = self.newest_tts
        models = self._models
        if any(r.device.model and (r.device.application_id, r.device.device_id) not in models for r in records):
            self._models_at = 0.0  # a new device brought its model: reload now
        try:
            self._refresh_models()
        except Exception as exc:  # the batch is committed; a failed reload only waits for the next one
            log.warning("device_models_reload_failed", extra={"error": str(exc).strip()})
            if is_outage(exc):
                self._close()
        summary.seconds = time.perf_counter() - started
        return summary

    def _write(self, records: list[UplinkRecord], dead: list[DeadLetter], skipped: Mapping[str, int]) -> WriteResult:
        """writer.write, retried on a fresh connection with backoff for as long as the database is out."""
        delay, factor, ceiling = DB_RETRY
        while True:
            if self._writer is None:
                self.connect(retry_all=True)
            assert self._writer is not None
            try:
                return self._writer.write(records, dead, skipped)
            except Outage as exc:
                log.warning(
                    "db_write_failed_retrying",
                    extra={"error": str(exc).strip(), "batch": len(records) + len(dead), "retry_in_s": delay},
                )
                self._close()
                self._sleep(delay)
                delay = min(delay * factor, ceiling)


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later of two optional times."""
    if a is None:
        return b
    return a if b is None or a >= b else b


def _internal_letter(topic: str, raw: bytes, exc: BaseException, received_at: datetime, batch: int) -> DeadLetter:
    device = topic_device(topic)
    return DeadLetter(
        received_at,
        "internal",
        f"unexpected {type(exc).__name__} while writing its batch of {batch}: {exc}",
        type(exc).__name__,
        topic,
        device[1] if device else None,
        raw,
    )


# --- the process side: what the parent's ProcessPoolExecutor calls ------------------------------------

_writer: BatchWriter | None = None


def _exit_when_orphaned(parent: int) -> None:
    """A pool worker blocks on its call queue forever if the parent is killed -9 (it holds both ends of
    the queue's pipe, so it never sees EOF). Nothing it holds is acknowledged, so leaving is safe."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(0)


def initialize(
    database_url: str,
    limits: Limits,
    log_level: str,
    log_setup: Callable[[], None] | None,
    stopping: EventType | None,
) -> None:
    """Pool initializer: logging like the parent's, the connection (waiting through an outage), the
    Processor. Ctrl-C reaches the whole process group; only the parent decides when to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if log_setup is not None:
        log_setup()
    else:
        logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)-7s %(name)s[worker]: %(message)s")
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    global _writer
    writer = BatchWriter(database_url, limits, stopping)
    try:
        writer.connect()
    except Stopping:
        return  # the ingester stopped before the database came back
    except Exception:
        log.exception("ingest_worker_cannot_start")
        raise
    _writer = writer
    quiet_gc()  # everything alive now lives as long as the process: keep the collector off it


def probe() -> tuple[int, datetime | None]:
    """(pid, newest stored TTS time): answered once the initializer has reached the database."""
    if _writer is None:
        raise Stopping
    return os.getpid(), _writer.newest_tts


def run_batch(items: list[Item], received_at: datetime, oversize: dict[int, int]) -> Summary:
    """Process and write one batch (see `BatchWriter.handle`)."""
    if _writer is None:
        raise Stopping
    return _writer.handle(items, received_at, oversize)
