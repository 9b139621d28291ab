"""Helpers to run a real Ingester against the session's Mosquitto and TimescaleDB."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.service import IngestConfig, Ingester, MqttConfig


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Publisher:
    """A paho client that publishes and waits for each publish to complete."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{time.monotonic_ns()}")
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos).wait_for_publish(timeout=10)

    def publish_many(self, items: list[tuple[str, bytes]], qos: int = 1) -> None:
        infos = [self.client.publish(t, p, qos=qos) for t, p in items]
        for info in infos:
            info.wait_for_publish(timeout=30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto: Any) -> Iterator[Publisher]:
    pub = Publisher(mosquitto.port)
    yield pub
    pub.close()


@contextmanager
def running_ingester(db: str, port: int, topics: tuple[str, ...], **kw: Any) -> Iterator[Ingester]:
    qos = kw.pop("qos", 1)
    client_id = kw.pop("client_id", f"ingest-{time.monotonic_ns()}")
    cfg = IngestConfig(
        database_url=db,
        mqtt=MqttConfig("127.0.0.1", port, topics=topics, qos=qos, client_id=client_id),
        batch_ms=20,
        **kw,
    )
    ing = Ingester(cfg)
    stop = threading.Event()
    thread = threading.Thread(target=ing.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert ing.ready.wait(15), "ingester did not become ready"
        yield ing
    finally:
        stop.set()
        thread.join(15)
        assert not thread.is_alive(), "ingester did not stop"


def scalar(db: str, sql: str, *args: Any) -> Any:
    with psycopg.connect(db) as conn:
        row = conn.execute(sql, args).fetchone()
    return row[0] if row else None
