"""`lorawatch ingest`: wire settings into an `ingest.service.Ingester` and run it until SIGTERM/Ctrl-C."""

from __future__ import annotations

import argparse
import functools
import logging
import signal
import threading
from datetime import timedelta
from types import FrameType

from ingest.backfill import StorageApi
from ingest.metrics import IngestMetrics
from ingest.pipeline import Limits
from ingest.service import IngestConfig, Ingester, MqttConfig
from lorawatch import logging as lw_logging
from lorawatch.cli import UsageError, database_url
from lorawatch.settings import Settings, parse_mqtt_url

log = logging.getLogger(__name__)


def ingest_config(settings: Settings, *, database: str | None = None, mqtt_url: str | None = None) -> IngestConfig:
    """Build the ingester's configuration from settings (explicit URLs override, e.g. for the demo)."""
    url = mqtt_url or (settings.mqtt_url.get_secret_value() if settings.mqtt_url else None)
    if url is None:
        msg = "LORAWATCH_MQTT_URL is not set (or run `lorawatch demo`, which starts its own broker)"
        raise UsageError(msg)
    try:
        target = parse_mqtt_url(url)
    except ValueError as exc:
        raise UsageError(f"LORAWATCH_MQTT_URL: {exc}") from None
    topics = tuple(t.strip() for t in settings.mqtt_topics.split(",") if t.strip())
    if not topics:
        raise UsageError("LORAWATCH_MQTT_TOPICS is empty")
    storage = None
    if settings.tts_api_url and settings.tts_api_key:
        storage = StorageApi(settings.tts_api_url, settings.tts_api_key.get_secret_value())
    return IngestConfig(
        database_url=database or database_url(settings),
        mqtt=MqttConfig(
            host=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            tls=target.tls,
            ca_file=settings.mqtt_ca_file,
            client_id=settings.mqtt_client_id,
            topics=topics,
            qos=settings.mqtt_qos,
        ),
        batch_size=settings.ingest_batch_size,
        batch_ms=settings.ingest_batch_ms,
        buffer=settings.ingest_buffer,
        buffer_bytes=settings.ingest_buffer_bytes,
        workers=settings.ingest_workers,
        limits=limits(settings),
        log_setup=functools.partial(lw_logging.configure, settings.log_level, settings.log_format),
        storage_api=storage,
    )


def limits(settings: Settings) -> Limits:
    """What the Processor accepts, from the LORAWATCH_INGEST_* settings."""
    apps = frozenset(a.strip() for a in settings.ingest_applications.split(",") if a.strip())
    return Limits(
        max_message_bytes=settings.ingest_max_message_bytes,
        max_future=timedelta(seconds=settings.ingest_max_future_s),
        max_age=timedelta(days=settings.ingest_max_age_days) if settings.ingest_max_age_days else None,
        applications=apps or None,
    )


def _run(args: argparse.Namespace, settings: Settings) -> int:
    config = ingest_config(settings)
    metrics = IngestMetrics()
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr="127.0.0.1", registry=metrics.registry)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    totals = Ingester(config, metrics).run(stop, on_ready=lambda: log.info("ingest_ready"))
    log.info(
        "ingest_stopped",
        extra={
            "received": totals.received,
            "stored": totals.stored,
            "duplicates": totals.duplicates,
            "dead_lettered": totals.dead_lettered,
            "skipped": totals.skipped,
            "dropped": totals.dropped,
            "deferred": totals.deferred,
            "backfilled": totals.backfilled,
            "worker_restarts": totals.worker_restarts,
        },
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ingest",
        help="subscribe to TTS/ChirpStack uplinks and store them (runs until stopped)",
        description="Connects to LORAWATCH_MQTT_URL, subscribes to LORAWATCH_MQTT_TOPICS, and "
        "writes decoded uplinks to LORAWATCH_DATABASE_URL. SIGTERM or Ctrl-C stops it cleanly.",
    )
    p.set_defaults(handler=_run)
