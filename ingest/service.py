"""The ingester: an MQTT subscriber whose callback only enqueues, and a writer loop that batches,
processes and writes, acknowledging QoS 1 messages only after their batch is committed.

Why this shape:
- paho's network thread must never block on the database (TTS drops messages for slow consumers), so
  `on_message` puts `(topic, payload, mid, qos, generation)` on a bounded queue and returns.
- With a QoS 1 broker (ChirpStack, or our own) the session is persistent (`clean_session=False`, fixed
  client id) and acknowledgements are manual: a message is PUBACKed only after the transaction holding
  it commits, so a kill -9 loses nothing; the broker redelivers and the natural key drops the repeats.
- A database outage is retried with backoff while messages wait (bounded: for QoS 1 the broker holds
  the rest, since unacknowledged messages fill its in-flight window).
- TTS (QoS 0, no session) gaps are backfilled from its Storage API after every (re)connect.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from ingest.backfill import BackfillError, StorageApi, applications_from, run_backfill
from ingest.metrics import IngestMetrics
from ingest.pipeline import Processor, Skipped
from store.writer import DeadLetter, IngestWriter, UplinkRecord, WriteResult, device_models

log = logging.getLogger(__name__)

#: Backoff between database reconnect attempts: start, factor, ceiling (seconds).
DB_RETRY = (0.2, 2.0, 5.0)
#: How often the device -> model cache is reloaded, so an admin's assignment takes effect.
MODEL_CACHE_S = 30.0
#: MQTT keepalive (seconds). TTS times out after 1.5x this with no packet.
KEEPALIVE_S = 30
#: Marker for messages that did not come from MQTT (backfill): nothing to acknowledge.
NO_ACK = -1


@dataclass(frozen=True, slots=True)
class MqttConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    client_id: str = "lorawatch-ingest"
    topics: tuple[str, ...] = ("v3/+/devices/+/up",)
    qos: int = 1


@dataclass(frozen=True, slots=True)
class IngestConfig:
    database_url: str
    mqtt: MqttConfig
    batch_size: int = 2000
    batch_ms: int = 100
    buffer: int = 50_000
    storage_api: StorageApi | None = None


@dataclass(slots=True)
class _Item:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    received_at: datetime


@dataclass(slots=True)
class Totals:
    """Running totals since start: what the zero-loss accounting is checked against."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    dropped: int = 0
    backfilled: int = 0
    batches: int = 0
    by_stage: dict[str, int] = field(default_factory=dict)


class Ingester:
    """Run with `run(stop_event)`; `ready` is set once subscribed and the database is reachable."""

    def __init__(self, config: IngestConfig, metrics: IngestMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or IngestMetrics()
        self.totals = Totals()
        self.ready = threading.Event()
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=config.buffer)
        self._generation = 0
        self._connected_once = False
        self._models: dict[str, str] = {}
        self._models_at = 0.0
        self._conn: psycopg.Connection | None = None
        self._writer: IngestWriter | None = None
        self._newest_tts: datetime | None = None
        self._stop = threading.Event()
        self._client = self._make_client()
        self._processor = Processor(self._model_of)

    # --- MQTT side (paho's thread) -------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        cfg = self.config.mqtt
        persistent = cfg.qos > 0
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            clean_session=not persistent,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            ctx = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
            client.tls_set_context(ctx)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: object,
    ) -> None:
        if reason.is_failure:
            log.error("mqtt_connect_refused", extra={"reason": str(reason), "host": self.config.mqtt.host})
            return
        self._generation += 1
        cfg = self.config.mqtt
        client.subscribe([(t, cfg.qos) for t in cfg.topics])
        self.metrics.mqtt_connected.set(1)
        log.info("mqtt_connected", extra={"host": cfg.host, "port": cfg.port, "topics": list(cfg.topics)})
        if self.config.storage_api is not None:
            threading.Thread(target=self._backfill, name="lorawatch-backfill", daemon=True).start()
        self._connected_once = True

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: object, reason: ReasonCode, _props: object
    ) -> None:
        self.metrics.mqtt_connected.set(0)
        if not self._stop.is_set():
            log.warning("mqtt_disconnected", extra={"reason": str(reason)})

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        item = _Item(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._generation, datetime.now(UTC))
        self.totals.received += 1
        if msg.qos > 0:
            # Blocking here is the backpressure: unacknowledged messages stay with the broker.
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.5)
                    return
                except queue.Full:
                    continue
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.totals.dropped += 1
            self.metrics.dropped.inc()
            log.error("ingest_buffer_full_dropped", extra={"topic": msg.topic, "buffer": self.config.buffer})

    def submit(self, topic: str, payload: bytes) -> None:
        """Feed a message from outside MQTT (backfill) through the same path; blocks when full."""
        self._queue.put(_Item(topic, payload, NO_ACK, 0, self._generation, datetime.now(UTC)))

    def _backfill(self) -> None:
        api = self.config.storage_api
        assert api is not None
        apps = applications_from(list(self.config.mqtt.topics), self.config.mqtt.username)
        if not apps:
            log.warning("backfill_no_application", extra={"topics": list(self.config.mqtt.topics)})
            return
        try:
            n = run_backfill(api, apps, self._newest_tts, self.submit)
        except BackfillError as exc:
            log.error("backfill_failed", extra={"error": str(exc)})
            return
        self.totals.backfilled += n
        self.metrics.backfilled.inc(n)

    # --- database side (the caller's thread) ---------------------------------------------------------

    def _model_of(self, device_id: str) -> str | None:
        return self._models.get(device_id)

    def _connect_db(self) -> None:
        delay, factor, ceiling = DB_RETRY
        while not self._stop.is_set():
            try:
                conn = psycopg.connect(self.config.database_url, connect_timeout=5)
                self._conn, self._writer = conn, IngestWriter(conn)
                row = conn.execute("SELECT max(time) FROM uplinks WHERE source = 'tts'").fetchone()
                conn.commit()
                self._newest_tts = row[0] if row else None
                self._refresh_models(force=True)
                self.metrics.db_connected.set(1)
                log.info("db_connected")
                return
            except psycopg.OperationalError as exc:
                self.metrics.db_connected.set(0)
                log.warning("db_unavailable_retrying", extra={"error": str(exc).strip(), "retry_in_s": delay})
                self._stop.wait(delay)
                delay = min(delay * factor, ceiling)

    def _refresh_models(self, *, force: bool = False) -> None:
        if self._conn is None or (not force and time.monotonic() - self._models_at < MODEL_CACHE_S):
            return
        self._models = device_models(self._conn)
        self._conn.commit()
        self._models_at = time.monotonic()

    def _drop_db(self) -> None:
        self.metrics.db_connected.set(0)
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = self._writer = None

    def _take_batch(self) -> list[_Item]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.config.batch_ms / 1000
        while len(batch) < self.config.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
        return batch

    def _handle(self, batch: list[_Item], *, retry: bool = True) -> None:
        records: list[UplinkRecord] = []
        dead: list[DeadLetter] = []
        for item in batch:
            outcome = self._processor.process(item.topic, item.payload, item.received_at)
            if isinstance(outcome, UplinkRecord):
                records.append(outcome)
            elif isinstance(outcome, DeadLetter):
                dead.append(outcome)
            elif isinstance(outcome, Skipped):
                self.totals.skipped += 1
                self.metrics.skipped.labels(outcome.kind).inc()
        result = self._write(records, dead, retry=retry)
        if result is None:
            return  # stopping during an outage: leave the batch unacknowledged for redelivery
        for item in batch:
            if item.qos > 0 and item.mid != NO_ACK and item.generation == self._generation:
                self._client.ack(item.mid, item.qos)
        self._account(result, records, dead)

    def _write(
        self, records: list[UplinkRecord], dead: list[DeadLetter], *, retry: bool = True
    ) -> WriteResult | None:
        """Write until it succeeds; None if asked to stop (or `retry` is off) while the database is down."""
        started = time.perf_counter()
        attempts = 0
        while attempts == 0 or (retry and not self._stop.is_set()):
            attempts += 1
            if self._writer is None:
                if not retry:
                    return None
                self._connect_db()
                if self._writer is None:
                    return None
            try:
                result = self._writer.write(records, dead)
                self.metrics.batch_seconds.observe(time.perf_counter() - started)
                return result
            except psycopg.OperationalError as exc:
                log.warning(
                    "db_write_failed_retrying",
                    extra={"error": str(exc).strip(), "batch": len(records) + len(dead)},
                )
                self._drop_db()
        return None

    def _account(self, result: WriteResult, records: list[UplinkRecord], dead: list[DeadLetter]) -> None:
        t = self.totals
        t.batches += 1
        t.stored += result.stored
        t.duplicates += result.duplicates
        t.dead_lettered += result.dead_lettered
        for d in [*dead, *result.store_rejects, *result.value_rejects]:
            t.by_stage[d.stage] = t.by_stage.get(d.stage, 0) + 1
            self.metrics.dead_letters.labels(d.stage).inc()
        self.metrics.stored.inc(result.stored)
        self.metrics.duplicates.inc(result.duplicates)
        self.metrics.received.inc(len(records) + len(dead))
        self.metrics.queue_depth.set(self._queue.qsize())
        newest = max((r.uplink[0] for r in records if r.uplink[3] == "tts"), default=None)
        if newest is not None and (self._newest_tts is None or newest > self._newest_tts):
            self._newest_tts = newest
        if any(r.device.device_id not in self._models and r.device.model for r in records):
            self._models_at = 0.0  # a new device brought its model: reload soon
        self._refresh_models()

    def run(self, stop: threading.Event | None = None, on_ready: Callable[[], None] | None = None) -> Totals:
        """Connect, subscribe and ingest until `stop` is set; then drain what is queued and return."""
        if stop is not None:

            def relay() -> None:
                stop.wait()
                self._stop.set()

            threading.Thread(target=relay, daemon=True).start()
        self._connect_db()
        cfg = self.config.mqtt
        self._client.connect_async(cfg.host, cfg.port, keepalive=KEEPALIVE_S)
        self._client.loop_start()
        try:
            while not self._stop.is_set():
                if not self.ready.is_set() and self._connected_once and self._writer is not None:
                    self.ready.set()
                    if on_ready:
                        on_ready()
                batch = self._take_batch()
                if batch:
                    self._handle(batch)
            # Stopping: write what is already queued if the database is there, so QoS 0 loses nothing.
            while self._writer is not None and not self._queue.empty():
                rest: list[_Item] = []
                while not self._queue.empty() and len(rest) < self.config.batch_size:
                    rest.append(self._queue.get_nowait())
                self._handle(rest, retry=False)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            self._drop_db()
        return self.totals

    def stop(self) -> None:
        self._stop.set()
