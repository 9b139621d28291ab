"""The ingester: an MQTT subscriber whose callback only enqueues, and a loop that batches, routes each
device to a fixed worker process, and acknowledges QoS 1 messages only after their batch is committed.

Why this shape:
- **paho's network thread never waits.** It must answer keepalives and read the socket whatever the
  database does (TTS drops slow consumers; any broker drops a client that misses 1.5 keepalives), so
  `on_message` appends to a bounded inbox and returns. When the inbox is full (by count or by bytes),
  a QoS 0 message is dropped and counted, and the drop window is backfilled from TTS storage once
  there is room; a QoS 1 message is *deferred*: not kept, not acknowledged, so it stays in flight at
  the broker (which sends no more than its in-flight window), and once the inbox is below half we
  reconnect so that the broker redelivers every unacknowledged message. The natural key drops repeats.
- **Memory is bounded by bytes.** A message over `limits.max_message_bytes` is cut to a 64 KiB prefix
  in paho's thread, before it is queued, and dead-lettered (stage `size`) by the worker; batches are
  bounded in bytes too, so what is in flight stays a fraction of the inbox's byte capacity.
- **Workers are standard process pools.** One `ProcessPoolExecutor(max_workers=1)` per worker slot
  (spawned: never fork a process that runs paho's thread); batches are futures. A pool that breaks
  (the worker was killed) is rebuilt and given its unfinished batches again; the parent never dies of
  it. Inside a worker no message and no bug can stop the stream (see ingest/worker.py).
- **One device, one worker**: each batch is split by a stable hash (crc32) of the device part of the
  topic, so one device's uplinks are always committed by the same worker, in the order received.
- **Acknowledgements go strictly in the order received** (MQTT requires it): a batch is acknowledged
  once all of its parts are committed and every batch before it has been acknowledged. A message
  received on an earlier connection is never acknowledged on a later one (its packet id may now name
  another message); the broker redelivers it instead.
- **The backfill never crowds out live traffic**: it hands over messages only while the inbox is
  below half its capacity, so live messages always find room.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from ingest import worker
from ingest.backfill import BackfillError, StorageApi, applications_from, run_backfill
from ingest.inbox import BACKFILL, Inbox
from ingest.metrics import IngestMetrics
from ingest.pipeline import Limits
from ingest.worker import SIZE_PREFIX, Summary, topic_device
from store.runtime import quiet_gc

log = logging.getLogger(__name__)

#: Batches handed over and not yet committed, per worker: two keep a worker busy while one is acknowledged.
MAX_BATCHES_IN_FLIGHT = 2
#: On stop, how long to wait for queued messages to be committed before leaving them to redelivery.
DRAIN_S = 10.0
#: After the drain, how long workers get to finish before they are killed.
WORKER_STOP_S = 10.0
#: MQTT keepalive (seconds). TTS times out after 1.5x this with no packet.
KEEPALIVE_S = 30
#: A batch stops growing when no message arrives within this gap (seconds).
LINGER_S = 0.003
#: Marker for messages that did not come from MQTT (backfill): nothing to acknowledge.
NO_ACK = -1
#: Bytes counted per queued message on top of its payload (the tuple, the topic, the ints).
ITEM_OVERHEAD = 256
#: "Room again": below this fraction of both capacities (redelivery, drop-window backfill, backfill).
ROOM = 0.5
#: How often the backfill looks for room (seconds).
ROOM_POLL_S = 0.005
#: A worker that dies again within this many seconds of its restart is restarted after a backoff.
RESTART_QUIET_S = 10.0
#: Restart backoff for a worker that keeps dying: start, ceiling (seconds).
RESTART_BACKOFF = (0.2, 5.0)
#: Entries in the topic -> worker cache before it is cleared (a fleet's topics, not a flood's).
ROUTE_CACHE = 100_000


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
    #: inbox capacity: messages, and bytes (payloads plus ITEM_OVERHEAD each)
    buffer: int = 50_000
    buffer_bytes: int = 64 * 1024 * 1024
    workers: int = 2
    #: what the Processor accepts; `max_message_bytes` is also where paho's thread cuts a message
    limits: Limits = field(default_factory=Limits)
    storage_api: StorageApi | None = None
    #: Run first in each worker process to configure logging like the parent's (must be picklable: a
    #: module-level function or a functools.partial of one). None: plain stderr logging at the parent's level.
    log_setup: Callable[[], None] | None = None


#: What paho's thread hands over: (topic, payload, mid, qos, connection generation, original size). A
#: plain tuple: this is built once per message in the thread that must keep up. `payload` is the
#: SIZE_PREFIX prefix when the original size is over the limit.
_Item = tuple[str, bytes, int, int, int, int]


@dataclass(slots=True)
class Totals:
    """Running totals since start: what the zero-loss accounting is checked against."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    dropped: int = 0  # QoS 0, buffer full: gone from MQTT (backfilled from TTS storage when configured)
    deferred: int = 0  # QoS 1, buffer full: left unacknowledged with the broker, which redelivers it
    backfilled: int = 0
    worker_restarts: int = 0
    redelivery_reconnects: int = 0  # reconnects we made so that the broker redelivers deferred messages
    mqtt_disconnects: int = 0  # disconnects we did not ask for (broker gone, keepalive missed, network)
    unwritten: int = 0  # could not be written even as dead letters (a bug; logged as critical)
    by_stage: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Slot:
    """One worker: its pool, and what is known about its process."""

    index: int
    pool: ProcessPoolExecutor
    probe: Future[tuple[int, datetime | None]] | None = None
    pid: int | None = None
    restarts: int = 0
    last_restart: float = -RESTART_QUIET_S
    rebuild_at: float | None = None  # broken: rebuild at this monotonic time


@dataclass(slots=True)
class _Part:
    """The messages of one batch that belong to one worker slot."""

    slot: int
    items: list[tuple[str, bytes]]
    oversize: dict[int, int]
    future: Future[Summary] | None = None  # None: not submitted (its pool was broken)
    pool: ProcessPoolExecutor | None = None


@dataclass(slots=True)
class _Batch:
    items: list[_Item]  # in the order received: the order of the acknowledgements
    nbytes: int  # what it holds of the inbox's byte capacity, released when it is done
    received_at: datetime
    parts: list[_Part]


def route_key(topic: str) -> str:
    """What a topic is routed by: its application and device, else the whole topic."""
    device = topic_device(topic)
    return topic if device is None else f"{device[0]}/{device[1]}"


def slot_of(topic: str, workers: int) -> int:
    """The worker slot of a topic's device: crc32, stable across processes and restarts (hash() is not)."""
    return zlib.crc32(route_key(topic).encode("utf-8", "surrogatepass")) % workers


def puback_all(client: mqtt.Client, mids: list[int]) -> None:
    """PUBACK `mids`, in order, as one write to the socket.

    Why not `client.ack` per message: it queues each 4-byte PUBACK as its own packet and wakes paho's
    network thread with a syscall each time, which made acknowledging a tenth of the parent's work. The
    very same bytes, queued as one packet with one wake-up, leave in one send. This reaches into paho's
    outgoing queue (`_out_packet`, `_sockpairW`, paho 2.x); if they are not what we expect, it falls
    back to the public `ack`."""
    out = getattr(client, "_out_packet", None)
    wake = getattr(client, "_sockpairW", None)
    if len(mids) == 1 or not isinstance(out, deque) or not isinstance(wake, socket.socket):
        for mid in mids:
            client.ack(mid, 1)
        return
    packet = b"".join([_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids])
    out.append(
        {"command": mqtt.PUBACK, "mid": mids[-1], "qos": 1, "pos": 0, "to_process": len(packet), "packet": packet,
         "info": None}
    )  # fmt: skip
    with contextlib.suppress(BlockingIOError):  # the wake-up pipe is full: the thread is awake already
        wake.send(b"0")


_PUBACK = struct.Struct("!BBH")


def _failure(future: Future[Any]) -> BaseException | None:
    """The future's exception (a cancelled future counts as a broken pool: it was never run)."""
    if future.cancelled():
        return BrokenProcessPool("cancelled")
    return future.exception()


class Ingester:
    """Run with `run(stop_event)`; `ready` is set once subscribed and the database is reachable."""

    def __init__(self, config: IngestConfig, metrics: IngestMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or IngestMetrics()
        self.totals = Totals()
        self.ready = threading.Event()
        self.connected_at: float | None = None  # perf_counter() of the first MQTT connect
        self._inbox: Inbox[_Item] = Inbox(config.buffer, config.buffer_bytes)
        self._max_bytes = config.limits.max_message_bytes
        # A batch is bounded in bytes so that the batches in flight together hold at most half the
        # inbox's bytes (they count against it until committed), leaving the rest to arriving messages.
        self._batch_bytes = max(config.buffer_bytes // (2 * MAX_BATCHES_IN_FLIGHT * config.workers), 1 << 20)
        self._counted: dict[str, int] = {}  # totals already added to their metric (paho only adds to totals)
        self._generation = 0
        self._ack_lock = threading.Lock()  # a generation change and a run of acks never interleave
        self._connected = False
        self._connected_once = False
        self._planned_disconnect = False
        self._redeliver = False  # a QoS 1 message was deferred on the current connection
        self._drop_lock = threading.Lock()
        self._drop_first: datetime | None = None  # the open window of QoS 0 drops
        self._drop_count = 0
        self._newest_tts: datetime | None = None
        self._stop = threading.Event()
        self._external_stop: threading.Event | None = None
        self._client = self._make_client()
        self._ctx = multiprocessing.get_context("spawn")  # never fork a process that runs paho's thread
        self._worker_stop: EventType = self._ctx.Event()
        self._slots: list[_Slot] = []
        self._routes: dict[str, int] = {}
        self._pending: deque[_Batch] = deque()
        self._max_in_flight = MAX_BATCHES_IN_FLIGHT * config.workers
        self._backfill_lock = threading.Lock()
        self._backfill_running = False
        self._backfill_next: list[datetime | None] = []  # requests that arrived while one was running

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
        with self._ack_lock:
            self._generation += 1
        planned = self._planned_disconnect
        self._planned_disconnect = False
        self._redeliver = False  # every connect redelivers what was deferred on the last one
        self._connected = True
        if self.connected_at is None:
            self.connected_at = time.perf_counter()
        cfg = self.config.mqtt
        client.subscribe([(t, cfg.qos) for t in cfg.topics])
        self.metrics.mqtt_connected.set(1)
        log.info("mqtt_connected", extra={"host": cfg.host, "port": cfg.port, "topics": list(cfg.topics)})
        if self.config.storage_api is not None and not planned:
            self._request_backfill(self._newest_tts)
        self._connected_once = True

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: object, reason: ReasonCode, _props: object
    ) -> None:
        # First of all: nothing received on this connection may be acknowledged from now on.
        with self._ack_lock:
            self._generation += 1
        self._connected = False
        self.metrics.mqtt_connected.set(0)
        if self._stop.is_set():
            return
        if self._planned_disconnect:
            log.info("mqtt_disconnected_for_redelivery")
        else:
            self.totals.mqtt_disconnects += 1
            log.warning("mqtt_disconnected", extra={"reason": str(reason)})

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        # Kept to a few comparisons and an append: this runs in paho's thread for every message, and it
        # must never wait. The metrics are brought up to date from `totals` by the batching loop.
        self.totals.received += 1
        payload = bytes(msg.payload)  # already bytes (then no copy); a bytearray only in theory
        size = len(payload)
        if size > self._max_bytes:
            payload = payload[:SIZE_PREFIX]  # the rest is never queued: memory stays bounded by bytes
        inbox = self._inbox
        if not inbox.full():
            inbox.put((msg.topic, payload, msg.mid, msg.qos, self._generation, size), len(payload) + ITEM_OVERHEAD)
        elif msg.qos > 0:
            # Not kept and not acknowledged: it stays in flight at the broker, which redelivers it after
            # the reconnect the batching loop makes once there is room again.
            self.totals.deferred += 1
            if not self._redeliver:
                self._redeliver = True
                log.warning("ingest_buffer_full_deferring", extra=self._buffer_extra())
        else:
            self.totals.dropped += 1
            with self._drop_lock:
                if self._drop_first is None:
                    self._drop_first = datetime.now(UTC)
                    log.error("ingest_buffer_full_dropping", extra={"topic": msg.topic, **self._buffer_extra()})
                self._drop_count += 1

    def _buffer_extra(self) -> dict[str, int]:
        inbox = self._inbox
        return {
            "queued": len(inbox),
            "in_flight": inbox.in_flight,
            "held_bytes": inbox.nbytes,
            "buffer": inbox.capacity,
        }

    def submit(self, topic: str, payload: bytes) -> bool:
        """Feed a message from outside MQTT (backfill) through the same path. It waits until the inbox
        is below half its capacity, so live messages always have room. False, with nothing queued, once
        the ingester is stopping."""
        while not self._inbox.below(ROOM):
            if self._stop.wait(ROOM_POLL_S):
                return False
        if self._stop.is_set():
            return False
        size = len(payload)
        if size > self._max_bytes:
            payload = payload[:SIZE_PREFIX]
        self._inbox.put((topic, payload, NO_ACK, 0, 0, size), len(payload) + ITEM_OVERHEAD, BACKFILL)
        return True

    # --- backfill (a thread of its own; one at a time) ----------------------------------------------

    def _request_backfill(self, after: datetime | None) -> None:
        """Backfill TTS storage from `after` (None: everything it keeps). Requests that arrive while one
        runs are merged into one more run from the earliest of them."""
        with self._backfill_lock:
            if self._backfill_running:
                self._backfill_next.append(after)
                return
            self._backfill_running = True
        threading.Thread(target=self._backfill, args=(after,), name="lorawatch-backfill", daemon=True).start()

    def _backfill(self, after: datetime | None) -> None:
        while True:
            self._backfill_once(after)
            with self._backfill_lock:
                if not self._backfill_next or self._stop.is_set():
                    self._backfill_running = False
                    self._backfill_next.clear()
                    return
                starts = self._backfill_next
                after = None if None in starts else min(s for s in starts if s is not None)
                starts.clear()

    def _backfill_once(self, after: datetime | None) -> None:
        api = self.config.storage_api
        assert api is not None
        apps = applications_from(list(self.config.mqtt.topics), self.config.mqtt.username)
        if not apps:
            log.warning("backfill_no_application", extra={"topics": list(self.config.mqtt.topics)})
            return
        log.info("backfill_started", extra={"applications": apps, "after": after.isoformat() if after else None})
        try:
            n = run_backfill(api, apps, after, self.submit)
        except BackfillError as exc:
            log.error("backfill_failed", extra={"error": str(exc)})
            return
        self.totals.backfilled += n

    # --- batching side (the caller's thread); decoding and writing happen in the worker processes ----

    def _take_batch(self, wait: float) -> tuple[list[_Item], int]:
        """Whatever is queued, up to `batch_size` (and a byte bound), with its size in bytes; lingers up
        to `batch_ms` only while messages keep arriving. Waiting for a full batch would stall a QoS 1
        stream, because the broker sends no more than its in-flight window until this batch is
        committed and acknowledged."""
        # batch_size bounds what one worker writes in one COPY batch: the batch is split between the slots.
        inbox, size, max_bytes = self._inbox, self.config.batch_size * len(self._slots), self._batch_bytes
        if not inbox.wait(wait):
            return [], 0
        batch, taken = inbox.take(size, max_bytes)
        deadline = time.monotonic() + self.config.batch_ms / 1000
        while len(batch) < size and taken < max_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not inbox.wait(min(remaining, LINGER_S)):
                break
            more, nbytes = inbox.take(size - len(batch), max_bytes - taken)
            batch.extend(more)
            taken += nbytes
        return batch, taken

    def _new_pool(self) -> ProcessPoolExecutor:
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=self._ctx,
            initializer=worker.initialize,
            initargs=(self.config.database_url, self.config.limits, level, self.config.log_setup, self._worker_stop),
        )

    def _start_workers(self) -> None:
        """Start one pool per slot and wait until each worker has reached the database. A worker that
        cannot start at all (a database that does not exist, a schema never migrated) is an error here:
        nothing has been received yet, and retrying would not fix it."""
        self._slots = [_Slot(i, self._new_pool()) for i in range(self.config.workers)]
        for slot in self._slots:
            slot.probe = slot.pool.submit(worker.probe)
        for slot in self._slots:
            assert slot.probe is not None
            while not self._stopping():
                try:
                    self._probed(slot, slot.probe.result(timeout=0.2))
                    break
                except TimeoutError:
                    continue
                except (BrokenProcessPool, worker.Stopping) as exc:
                    msg = "ingest worker exited before it was ready (its log above says why)"
                    raise RuntimeError(msg) from exc
        self.metrics.db_connected.set(1)

    def _probed(self, slot: _Slot, answer: tuple[int, datetime | None]) -> None:
        slot.pid, newest = answer
        self._newest_tts = worker.later(self._newest_tts, newest)

    def worker_pids(self) -> list[int]:
        """The process ids of the running workers (those that have answered since their last start)."""
        for slot in self._slots:
            if slot.pid is None and slot.probe is not None and slot.probe.done() and _failure(slot.probe) is None:
                self._probed(slot, slot.probe.result())
        return [slot.pid for slot in self._slots if slot.pid is not None]

    def _route(self, topic: str) -> int:
        slot = self._routes.get(topic)
        if slot is None:
            if len(self._routes) >= ROUTE_CACHE:
                self._routes.clear()
            slot = self._routes[topic] = slot_of(topic, len(self._slots))
        return slot

    def _dispatch(self, items: list[_Item], nbytes: int) -> None:
        """Split a batch by device into one part per worker slot and submit the parts."""
        groups: list[list[_Item]]
        if len(self._slots) == 1:
            groups = [items]
        else:
            groups = [[] for _ in self._slots]
            route = self._route
            for item in items:
                groups[route(item[0])].append(item)
        limit = self._max_bytes
        parts = [
            _Part(index, [(i[0], i[1]) for i in group], {k: i[5] for k, i in enumerate(group) if i[5] > limit})
            for index, group in enumerate(groups)
            if group
        ]
        batch = _Batch(items, nbytes, datetime.now(UTC), parts)
        self._pending.append(batch)
        for part in parts:
            self._submit(part, batch.received_at)

    def _submit(self, part: _Part, received_at: datetime) -> None:
        slot = self._slots[part.slot]
        part.future = part.pool = None
        if slot.rebuild_at is not None:
            return  # resubmitted when the slot is rebuilt
        try:
            part.future = slot.pool.submit(worker.run_batch, part.items, received_at, part.oversize)
            part.pool = slot.pool
        except BrokenProcessPool:
            self._broken(slot)
        except RuntimeError:  # "cannot schedule new futures after shutdown": only while stopping
            if not self._stop.is_set():
                raise

    def _collect(self, wait: float) -> None:
        """Take the workers' answers. Batches are acknowledged strictly in the order they were received
        (MQTT wants PUBACKs in order), so a batch that is done early waits for the ones before it."""
        if not self._pending:
            return
        if wait > 0:
            futures = [p.future for p in self._pending[0].parts if p.future is not None]
            if futures:
                wait_futures(futures, timeout=wait)
        while self._pending:
            batch = self._pending[0]
            if not all(p.future is not None and p.future.done() for p in batch.parts):
                if wait > 0 and any(p.future is None for p in batch.parts):
                    self._stop.wait(wait)  # waiting for a broken slot's rebuild: do not spin
                return
            failures = [(p, _failure(p.future)) for p in batch.parts if p.future is not None]
            if any(isinstance(exc, BrokenProcessPool) for _, exc in failures):
                if wait > 0:  # `_heal` rebuilds the pool and resubmits; do not spin until then
                    self._stop.wait(wait)
                return
            self._pending.popleft()
            self._inbox.release(len(batch.items), batch.nbytes)
            acked = True
            for part, exc in failures:
                assert part.future is not None
                if exc is None:
                    self._account(part.future.result())
                    continue
                acked = False
                if isinstance(exc, worker.Stopping):
                    log.info("ingest_batch_left_for_redelivery", extra={"messages": len(part.items)})
                else:  # not reachable by design (the worker catches everything): say so loudly
                    log.error("ingest_batch_failed", exc_info=exc, extra={"messages": len(part.items)})
                    self.totals.unwritten += len(part.items)
            if acked:
                self._ack(batch.items)

    def _ack(self, items: list[_Item]) -> None:
        """PUBACK the batch's QoS 1 messages that arrived on the current connection, in order."""
        with self._ack_lock:
            generation = self._generation
            mids = [mid for _, _, mid, qos, item_generation, _ in items if qos > 0 and item_generation == generation]
            if mids:
                puback_all(self._client, mids)

    def _broken(self, slot: _Slot) -> None:
        """Schedule the rebuild of a slot whose pool broke (its worker died)."""
        if slot.rebuild_at is not None:
            return
        now = time.monotonic()
        start, ceiling = RESTART_BACKOFF
        again = now - slot.last_restart < RESTART_QUIET_S
        delay = min(start * 2 ** min(slot.restarts, 10), ceiling) if again else 0.0
        if not again:
            slot.restarts = 0
        slot.rebuild_at = now + delay
        log.error("ingest_worker_died_restarting", extra={"slot": slot.index, "pid": slot.pid, "in_s": delay})

    def _heal(self) -> None:
        """Find broken pools among the batches in flight, and rebuild those whose time has come."""
        for batch in self._pending:
            for part in batch.parts:
                f = part.future
                if f is not None and f.done() and isinstance(_failure(f), BrokenProcessPool):
                    slot = self._slots[part.slot]
                    if part.pool is slot.pool:
                        self._broken(slot)
        now = time.monotonic()
        for slot in self._slots:
            if slot.rebuild_at is not None and now >= slot.rebuild_at:
                self._rebuild(slot)

    def _rebuild(self, slot: _Slot) -> None:
        """A new pool for the slot, given every unfinished part of it again, in order (the natural key
        drops whatever the dead worker had committed but not reported)."""
        old = slot.pool
        old.shutdown(wait=False, cancel_futures=True)
        slot.pool, slot.pid, slot.rebuild_at = self._new_pool(), None, None
        slot.restarts += 1
        slot.last_restart = time.monotonic()
        self.totals.worker_restarts += 1
        slot.probe = slot.pool.submit(worker.probe)
        again = 0
        for batch in self._pending:
            for part in batch.parts:
                if part.slot != slot.index:
                    continue
                f = part.future
                if f is None or (part.pool is old and (not f.done() or isinstance(_failure(f), BrokenProcessPool))):
                    self._submit(part, batch.received_at)
                    again += 1
        log.info("ingest_worker_restarted", extra={"slot": slot.index, "resubmitted_batches": again})

    def _account(self, s: Summary) -> None:
        t = self.totals
        t.stored += s.stored
        t.duplicates += s.duplicates
        t.dead_lettered += s.dead_lettered
        t.skipped += sum(s.skipped.values())
        t.unwritten += s.unwritten
        for kind, n in s.skipped.items():
            self.metrics.skipped.labels(kind).inc(n)
        for stage, n in s.dead_by_stage.items():
            t.by_stage[stage] = t.by_stage.get(stage, 0) + n
            self.metrics.dead_letters.labels(stage).inc(n)
        self.metrics.stored.inc(s.stored)
        self.metrics.duplicates.inc(s.duplicates)
        self.metrics.batch_seconds.observe(s.seconds)
        self._newest_tts = worker.later(self._newest_tts, s.newest_tts)

    # --- flow control ---------------------------------------------------------------------------------

    def _flow_control(self) -> None:
        """Once the inbox is below half: have the broker redeliver what was deferred, and backfill (or
        report) what was dropped."""
        inbox = self._inbox
        if not inbox.below(ROOM):
            return
        if self._redeliver and self._connected:
            self._reconnect_for_redelivery()
        if self._drop_first is not None:
            with self._drop_lock:
                first, count = self._drop_first, self._drop_count
                self._drop_first, self._drop_count = None, 0
            if first is None:
                return
            if self.config.storage_api is not None:
                log.warning("ingest_dropped_backfilling", extra={"dropped": count, "since": first.isoformat()})
                self._request_backfill(first)
            else:
                log.error(
                    "ingest_dropped_lost",
                    extra={
                        "dropped": count,
                        "since": first.isoformat(),
                        "advice": "QoS 0 messages were dropped while the buffer was full and no TTS Storage "
                        "API is configured (LORAWATCH_TTS_API_URL/_KEY) to backfill them; use QoS 1, or a "
                        "larger LORAWATCH_INGEST_BUFFER",
                    },
                )

    def _reconnect_for_redelivery(self) -> None:
        """Drop the connection so that paho's thread reconnects (after its reconnect delay, 1 s) and the
        broker redelivers every unacknowledged message (the persistent session keeps them).

        Why a socket shutdown from here: paho's thread must do the reconnect itself. `reconnect()` from
        another thread races paho's select on the old socket, and `disconnect()` ends `loop_start`'s
        thread (restarting it leaks paho's wake-up socket pair). `socket.shutdown` on the raw socket
        (the base-class method, so a TLS socket's state is left to paho's thread) only makes paho's
        next read see end-of-file, which it handles as any lost connection."""
        sock = self._client.socket()
        if sock is None:
            return  # not connected: the reconnect under way redelivers anyway
        self._redeliver = False
        self.totals.redelivery_reconnects += 1
        log.info("mqtt_reconnecting_for_redelivery", extra={"deferred": self.totals.deferred})
        with self._ack_lock:
            self._generation += 1  # nothing received so far may be acknowledged on the next connection
        self._planned_disconnect = True
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # type: ignore[arg-type]
        except OSError as exc:  # already closed: paho is reconnecting on its own
            log.debug("mqtt_shutdown_failed", extra={"error": str(exc)})

    def _update_metrics(self) -> None:
        """Bring the counters paho's thread only adds to `totals` (cheaper than a metric per message)
        up to date, and the queue depth."""
        t, m, counted = self.totals, self.metrics, self._counted
        for name, value, counter in (
            ("received", t.received, m.received),
            ("dropped", t.dropped, m.dropped),
            ("deferred", t.deferred, m.deferred),
            ("backfilled", t.backfilled, m.backfilled),
            ("worker_restarts", t.worker_restarts, m.worker_restarts),
            ("redelivery_reconnects", t.redelivery_reconnects, m.redelivery_reconnects),
        ):
            before = counted.get(name, 0)
            if value != before:
                counter.inc(value - before)
                counted[name] = value
        m.queue_depth.set(len(self._inbox) + self._inbox.in_flight)

    # --- run ------------------------------------------------------------------------------------------

    def _stopping(self) -> bool:
        if self._external_stop is not None and self._external_stop.is_set():
            self._stop.set()
        return self._stop.is_set()

    def run(self, stop: threading.Event | None = None, on_ready: Callable[[], None] | None = None) -> Totals:
        """Connect, subscribe and ingest until `stop` is set; then write what is queued and return."""
        self._external_stop = stop
        quiet_gc()
        try:
            self._start_workers()
            if self._stopping():
                return self.totals
            cfg = self.config.mqtt
            self._client.connect_async(cfg.host, cfg.port, keepalive=KEEPALIVE_S)
            self._client.loop_start()
            while not self._stopping():
                if not self.ready.is_set() and self._connected_once:
                    self.ready.set()
                    if on_ready:
                        on_ready()
                if len(self._pending) < self._max_in_flight:
                    batch, nbytes = self._take_batch(0.002 if self._pending else 0.2)
                    if batch:
                        self._dispatch(batch, nbytes)
                self._collect(0.0 if len(self._pending) < self._max_in_flight else 0.05)
                self._heal()
                self._flow_control()
                self._update_metrics()
            self._drain()
            self._update_metrics()
        finally:
            self._stop.set()
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
                self._dispatch(*self._take_batch(0))
            self._collect(0.1)
            self._heal()
        if self._pending or len(self._inbox):
            log.warning(
                "ingest_stopped_with_unwritten_messages",
                extra={"batches": len(self._pending), "queued": len(self._inbox)},
            )

    def _stop_workers(self) -> None:
        """Tell workers that wait for the database to give up, let the rest finish their batch, and kill
        any that does not end in time (nothing they hold is acknowledged)."""
        self._worker_stop.set()
        stoppers = []
        for slot in self._slots:
            t = threading.Thread(target=slot.pool.shutdown, kwargs={"wait": True, "cancel_futures": True}, daemon=True)
            t.start()
            stoppers.append((slot, t))
        deadline = time.monotonic() + WORKER_STOP_S
        for slot, t in stoppers:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive() and slot.pid is not None:
                log.warning("ingest_worker_killed_on_stop", extra={"pid": slot.pid})
                with contextlib.suppress(OSError):
                    os.kill(slot.pid, signal.SIGKILL)
                t.join(5)
        self.metrics.db_connected.set(0)
