"""Prometheus metrics for the ingester (served by `lorawatch ingest` when a metrics port is set)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    """One set per ingester; a registry of its own keeps tests and multiple ingesters apart."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter("lorawatch_ingest_received", "MQTT messages received", registry=r)
        self.stored = Counter("lorawatch_ingest_stored", "uplinks written to the database", registry=r)
        self.duplicates = Counter("lorawatch_ingest_duplicates", "uplinks dropped as already stored", registry=r)
        self.skipped = Counter("lorawatch_ingest_skipped", "non-uplink messages skipped", ["kind"], registry=r)
        self.dead_letters = Counter("lorawatch_ingest_dead_letters", "messages dead-lettered", ["stage"], registry=r)
        self.dropped = Counter("lorawatch_ingest_dropped", "QoS 0 messages dropped: buffer full", registry=r)
        self.deferred = Counter(
            "lorawatch_ingest_deferred",
            "QoS 1 messages left unacknowledged with the broker (buffer full), redelivered after a reconnect",
            registry=r,
        )
        self.worker_restarts = Counter(
            "lorawatch_ingest_worker_restarts", "worker processes replaced after they died", registry=r
        )
        self.redelivery_reconnects = Counter(
            "lorawatch_ingest_redelivery_reconnects",
            "MQTT reconnects made to have the broker redeliver deferred messages",
            registry=r,
        )
        self.batch_seconds = Histogram(
            "lorawatch_ingest_batch_seconds",
            "time to write one batch",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.queue_depth = Gauge("lorawatch_ingest_queue_depth", "messages waiting to be written", registry=r)
        self.mqtt_connected = Gauge("lorawatch_ingest_mqtt_connected", "1 while connected to the broker", registry=r)
        self.db_connected = Gauge("lorawatch_ingest_db_connected", "1 while the database is reachable", registry=r)
        self.backfilled = Counter("lorawatch_ingest_backfilled", "uplinks fetched from TTS storage", registry=r)
