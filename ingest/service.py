"""The ingester: an MQTT subscriber whose callback only enqueues, and a writer loop that batches,
processes and writes, acknowledging QoS 1 messages only after their batch is committed.

Why this shape:
- paho's network thread must never block on the database (TTS drops messages for slow consumers), so
  `on_message` appends `(topic, payload, mid, qos, generation)` to a bounded inbox and returns.
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
import multiprocessing
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as mp_wait
from multiprocessing.process import BaseProcess
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from ingest.backfill import BackfillError, StorageApi, applications_from, run_backfill
from ingest.inbox import Inbox
from ingest.metrics import IngestMetrics
from ingest.worker import Summary, worker_main

log = logging.getLogger(__name__)

#: Batches per worker handed over and not yet committed: two keep a worker busy while one is acknowledged.
MAX_BATCHES_IN_FLIGHT = 2
#: On stop, how long to wait for queued messages to be committed before leaving them to redelivery.
DRAIN_S = 10.0
#: MQTT keepalive (seconds). TTS times out after 1.5x this with no packet.
KEEPALIVE_S = 30
#: A batch stops growing when no message arrives within this gap (seconds).
LINGER_S = 0.003
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
    workers: int = 2
    storage_api: StorageApi | None = None
    #: Run first in each worker process to configure logging like the parent's (must be picklable: a
    #: module-level function or a functools.partial of one). None: plain stderr logging at the parent's level.
    log_setup: Callable[[], None] | None = None


#: What paho's thread hands over: (topic, payload, mid, qos, connection generation). A plain tuple: this
#: is built once per message in the thread that must keep up.
_Item = tuple[str, bytes, int, int, int]


def _batch_message(batch_id: int, batch: list[_Item]) -> tuple[str, int, datetime, list[tuple[str, bytes]]]:
    """What goes down the pipe. One receive time per batch, taken here rather than per message in paho's
    thread: it only dates dead letters, and milliseconds do not matter there."""
    return ("batch", batch_id, datetime.now(UTC), [(i[0], i[1]) for i in batch])


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
    by_stage: dict[str, int] = field(default_factory=dict)


class Ingester:
    """Run with `run(stop_event)`; `ready` is set once subscribed and the database is reachable."""

    def __init__(self, config: IngestConfig, metrics: IngestMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or IngestMetrics()
        self.totals = Totals()
        self.ready = threading.Event()
        self.connected_at: float | None = None  # perf_counter() of the first MQTT connect
        self._inbox: Inbox[_Item] = Inbox(config.buffer)
        self._received_counted = 0  # totals.received already added to the metric
        self._generation = 0
        self._connected_once = False
        self._newest_tts: datetime | None = None
        self._stop = threading.Event()
        self._client = self._make_client()
        self._workers: list[tuple[BaseProcess, Connection]] = []
        self._pending: deque[tuple[int, int, list[_Item]]] = deque()  # (batch id, worker, items)
        self._answers: dict[int, Summary] = {}
        self._batch_id = 0
        self._max_in_flight = MAX_BATCHES_IN_FLIGHT * config.workers

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
        if self.connected_at is None:
            self.connected_at = time.perf_counter()
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
        # Kept to a tuple and an append: this runs in paho's thread for every message. The received
        # metric is brought up to date from `totals` by the batching loop.
        self.totals.received += 1
        item = (msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._generation)
        if not self._inbox.full():
            self._inbox.put(item)
        elif msg.qos > 0:
            # Waiting here is the backpressure: unacknowledged messages stay with the broker.
            self._inbox.put_blocking(item, self._stop)
        else:
            self.totals.dropped += 1
            self.metrics.dropped.inc()
            log.error("ingest_buffer_full_dropped", extra={"topic": msg.topic, "buffer": self.config.buffer})

    def submit(self, topic: str, payload: bytes) -> bool:
        """Feed a message from outside MQTT (backfill) through the same path; waits while full.
        False, with nothing queued, once the ingester is stopping."""
        if self._stop.is_set():
            return False
        return self._inbox.put_blocking((topic, payload, NO_ACK, 0, self._generation), self._stop)

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

    # --- batching side (the caller's thread); decoding and writing happen in the worker process ------

    def _take_batch(self, wait: float) -> list[_Item]:
        """Whatever is queued, up to `batch_size`; lingers up to `batch_ms` only while messages keep
        arriving. Waiting for a full batch would stall a QoS 1 stream, because the broker sends no more
        than its in-flight window until this batch is committed and acknowledged."""
        inbox, size = self._inbox, self.config.batch_size
        if not inbox.wait(wait):
            return []
        batch = inbox.take(size)
        deadline = time.monotonic() + self.config.batch_ms / 1000
        while len(batch) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not inbox.wait(min(remaining, LINGER_S)):
                break
            batch.extend(inbox.take(size - len(batch)))
        return batch

    def _spawn_worker(self) -> tuple[BaseProcess, Connection]:
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs paho's thread
        parent, child = ctx.Pipe()
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        proc = ctx.Process(
            target=worker_main,
            args=(child, self.config.database_url, level, self.config.log_setup),
            name="lorawatch-ingest-worker",
            daemon=True,
        )
        proc.start()
        child.close()
        return proc, parent

    def _start_workers(self) -> None:
        """Start the worker processes and wait until each has reached the database."""
        self._workers = [self._spawn_worker() for _ in range(self.config.workers)]
        for proc, pipe in self._workers:
            self._await_ready(proc, pipe)
        self.metrics.db_connected.set(1)

    def _await_ready(self, proc: BaseProcess, pipe: Connection) -> None:
        while not self._stop.is_set():
            if pipe.poll(0.2):
                kind, newest = pipe.recv()
                assert kind == "ready", kind
                if newest is not None and (self._newest_tts is None or newest > self._newest_tts):
                    self._newest_tts = newest
                return
            if not proc.is_alive():
                msg = f"ingest worker exited with code {proc.exitcode} before it was ready"
                raise RuntimeError(msg)

    def _send(self, batch: list[_Item], worker: int | None = None) -> None:
        self._batch_id += 1
        index = self._batch_id % len(self._workers) if worker is None else worker
        self._pending.append((self._batch_id, index, batch))
        self._workers[index][1].send(_batch_message(self._batch_id, batch))

    def _collect(self, wait: float) -> None:
        """Take the workers' answers. Batches are acknowledged strictly in the order they were received
        (MQTT wants PUBACKs in order), so an answer that arrives early waits for the ones before it."""
        pipes = [pipe for _, pipe in self._workers]
        for pipe in mp_wait(pipes, timeout=wait) if self._pending else []:
            assert isinstance(pipe, Connection)
            kind, batch_id, summary = pipe.recv()
            assert kind == "done", kind
            self._answers[batch_id] = summary
        while self._pending and self._pending[0][0] in self._answers:
            batch_id, _, batch = self._pending.popleft()
            generation = self._generation
            for _, _, mid, qos, item_generation in batch:
                if qos > 0 and mid != NO_ACK and item_generation == generation:
                    self._client.ack(mid, qos)
            self._account(self._answers.pop(batch_id))
        if not self._stop.is_set():
            for index, (proc, _) in enumerate(self._workers):
                if not proc.is_alive():
                    self._restart_worker(index)

    def _restart_worker(self, index: int) -> None:
        """A crashed worker is replaced and given its unanswered batches again (dedup drops repeats)."""
        log.error("ingest_worker_died_restarting", extra={"exitcode": self._workers[index][0].exitcode})
        self._workers[index][1].close()
        self._workers[index] = self._spawn_worker()
        self._await_ready(*self._workers[index])
        mine = [(bid, batch) for bid, w, batch in self._pending if w == index and bid not in self._answers]
        for bid, batch in mine:
            self._workers[index][1].send(_batch_message(bid, batch))

    def _account(self, s: Summary) -> None:
        t = self.totals
        t.stored += s.stored
        t.duplicates += s.duplicates
        t.dead_lettered += s.dead_lettered
        t.skipped += sum(s.skipped.values())
        for kind, n in s.skipped.items():
            self.metrics.skipped.labels(kind).inc(n)
        for stage, n in s.dead_by_stage.items():
            t.by_stage[stage] = t.by_stage.get(stage, 0) + n
            self.metrics.dead_letters.labels(stage).inc(n)
        self.metrics.stored.inc(s.stored)
        self.metrics.duplicates.inc(s.duplicates)
        self.metrics.batch_seconds.observe(s.seconds)
        self._newest_tts = s.newest_tts

    def _update_metrics(self) -> None:
        """Bring the received counter and the queue depth up to date (paho's thread only adds to
        `totals.received`, which is cheaper than a metric per message)."""
        received = self.totals.received
        self.metrics.received.inc(received - self._received_counted)
        self._received_counted = received
        self.metrics.queue_depth.set(len(self._inbox))

    def run(self, stop: threading.Event | None = None, on_ready: Callable[[], None] | None = None) -> Totals:
        """Connect, subscribe and ingest until `stop` is set; then write what is queued and return."""
        if stop is not None:

            def relay() -> None:
                stop.wait()
                self._stop.set()

            threading.Thread(target=relay, daemon=True).start()
        self._start_workers()
        cfg = self.config.mqtt
        self._client.connect_async(cfg.host, cfg.port, keepalive=KEEPALIVE_S)
        self._client.loop_start()
        try:
            while not self._stop.is_set():
                if not self.ready.is_set() and self._connected_once:
                    self.ready.set()
                    if on_ready:
                        on_ready()
                if len(self._pending) < self._max_in_flight:
                    batch = self._take_batch(0.002 if self._pending else 0.2)
                    if batch:
                        self._send(batch)
                self._collect(0.0 if len(self._pending) < self._max_in_flight else 0.05)
                self._update_metrics()
            self._drain()
            self._update_metrics()
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            self._stop_workers()
        return self.totals

    def _drain(self) -> None:
        """On stop: hand over what is queued and wait (bounded) for it to commit, so QoS 0 loses nothing.
        Whatever is not committed in time stays unacknowledged and the QoS 1 broker redelivers it."""
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline and (self._pending or len(self._inbox)):
            while len(self._pending) < self._max_in_flight and len(self._inbox):
                self._send(self._take_batch(0))
            self._collect(0.1)
        if self._pending or len(self._inbox):
            log.warning(
                "ingest_stopped_with_unwritten_messages",
                extra={"batches": len(self._pending), "queued": len(self._inbox)},
            )

    def _stop_workers(self) -> None:
        for _, pipe in self._workers:
            with contextlib.suppress(OSError):
                pipe.send(("stop",))
        for proc, pipe in self._workers:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            pipe.close()
        self.metrics.db_connected.set(0)
