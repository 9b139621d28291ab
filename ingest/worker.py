"""The ingest worker process: decode, normalise and write batches; report what happened.

It runs in a process of its own so that decoding and database work never compete with paho's network
thread for the GIL: the MQTT side stays responsive (TTS drops messages for slow consumers) and the two
halves use both cores. The protocol over the pipe is small and ordered:

    parent -> worker   ("batch", batch_id, received_at, [(topic, payload), ...])  |  ("stop",)
    worker -> parent   ("ready", newest_tts_time)  |  ("done", batch_id, Summary)

A batch is answered only once it is committed, so the parent can acknowledge its QoS 1 messages. A
database outage is retried here, with backoff, for as long as it lasts.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection

import psycopg

from ingest.pipeline import Processor, Skipped
from store.writer import DeadLetter, IngestWriter, UplinkRecord, WriteResult, device_models

log = logging.getLogger(__name__)

#: Backoff between database reconnect attempts: start, factor, ceiling (seconds).
DB_RETRY = (0.2, 2.0, 5.0)
#: How often the device -> model cache is reloaded, so an admin's assignment takes effect.
MODEL_CACHE_S = 30.0

Item = tuple[str, bytes]


@dataclass(slots=True)
class Summary:
    """What one batch did; the parent adds these up."""

    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    dead_by_stage: dict[str, int] = field(default_factory=dict)
    newest_tts: datetime | None = None
    seconds: float = 0.0


class BatchWriter:
    """Processes and writes batches on one connection, reconnecting through outages."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._conn: psycopg.Connection | None = None
        self._writer: IngestWriter | None = None
        self._models: dict[str, str] = {}
        self._models_at = 0.0
        self.processor = Processor(self._models.get)
        self.newest_tts: datetime | None = None

    def connect(self) -> None:
        """Connect (retrying with backoff until it works) and load the device -> model cache."""
        delay, factor, ceiling = DB_RETRY
        while True:
            try:
                conn = psycopg.connect(self.database_url, connect_timeout=5)
                self._conn, self._writer = conn, IngestWriter(conn)
                row = conn.execute("SELECT max(time) FROM uplinks WHERE source = 'tts'").fetchone()
                conn.commit()
                self.newest_tts = row[0] if row else None
                self._refresh_models(force=True)
                log.info("db_connected")
                return
            except psycopg.OperationalError as exc:
                log.warning("db_unavailable_retrying", extra={"error": str(exc).strip(), "retry_in_s": delay})
                self._close()
                time.sleep(delay)
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
        self._models.clear()
        self._models.update(device_models(self._conn))
        self._conn.commit()
        self._models_at = time.monotonic()

    def handle(self, items: list[Item], received_at: datetime) -> Summary:
        """Process and write one batch; returns only after it is committed."""
        started = time.perf_counter()
        summary = Summary()
        records: list[UplinkRecord] = []
        dead: list[DeadLetter] = []
        for topic, payload in items:
            outcome = self.processor.process(topic, payload, received_at)
            if isinstance(outcome, UplinkRecord):
                records.append(outcome)
            elif isinstance(outcome, DeadLetter):
                dead.append(outcome)
            elif isinstance(outcome, Skipped):
                summary.skipped[outcome.kind] = summary.skipped.get(outcome.kind, 0) + 1
        result = self._write(records, dead)
        summary.stored, summary.duplicates, summary.dead_lettered = (
            result.stored,
            result.duplicates,
            result.dead_lettered,
        )
        for d in [*dead, *result.store_rejects, *result.value_rejects]:
            summary.dead_by_stage[d.stage] = summary.dead_by_stage.get(d.stage, 0) + 1
        newest = max((r.uplink[0] for r in records if r.uplink[3] == "tts"), default=None)
        if newest is not None and (self.newest_tts is None or newest > self.newest_tts):
            self.newest_tts = newest
        summary.newest_tts = self.newest_tts
        if any(r.device.model and r.device.device_id not in self._models for r in records):
            self._models_at = 0.0  # a new device brought its model: reload now
        self._refresh_models()
        summary.seconds = time.perf_counter() - started
        return summary

    def _write(self, records: list[UplinkRecord], dead: list[DeadLetter]) -> WriteResult:
        while True:
            if self._writer is None:
                self.connect()
            assert self._writer is not None
            try:
                return self._writer.write(records, dead)
            except psycopg.OperationalError as exc:
                log.warning(
                    "db_write_failed_retrying",
                    extra={"error": str(exc).strip(), "batch": len(records) + len(dead)},
                )
                self._close()


def worker_main(
    pipe: Connection, database_url: str, log_level: str, log_setup: Callable[[], None] | None = None
) -> None:
    """Entry point of the worker process."""
    if log_setup is not None:
        log_setup()
    else:
        logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)-7s %(name)s[worker]: %(message)s")
    writer = BatchWriter(database_url)
    writer.connect()
    # Everything alive now (modules, codecs, the connection) lives as long as the process: keep it out
    # of the collector's way, so the collections that a batch's garbage triggers stay small.
    gc.freeze()
    pipe.send(("ready", writer.newest_tts))
    while True:
        try:
            message = pipe.recv()
        except (EOFError, OSError):
            return  # the parent is gone: nothing here is acknowledged, the broker will redeliver
        if message[0] == "stop":
            return
        _, batch_id, received_at, items = message
        pipe.send(("done", batch_id, writer.handle(items, received_at)))
