"""The on-demand servers themselves: start, accept connections, restart with state, clean errors."""

from __future__ import annotations

import os
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from lorawatch.services import Mosquitto, Postgres, ServiceError


def test_postgres_keeps_data_across_restart(service_root: Path) -> None:
    pg = Postgres(service_root / "restart-pg", durable=False).start()
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (42)")
        pg.stop()
        pg.start()
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("SELECT x FROM t").fetchone() == (42,)
            assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("timescaledb",)
    finally:
        pg.destroy()


@pytest.mark.skipif(os.geteuid() != 0, reason="the directory check only applies when running as root")
def test_postgres_under_private_directory_is_a_clear_error(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private).chmod(0o700)
    with pytest.raises(ServiceError, match="postgres system user cannot enter"):
        Postgres(private / "pg").init()


def _connack(port: int, username: str, password: str) -> str:
    """Connect and return the broker's CONNACK reason (waits for it, bounded)."""
    import threading

    done = threading.Event()
    result: list[str] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{username}-{password}")
    client.username_pw_set(username, password)

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        result.append(str(reason))
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(5), "no CONNACK within 5 s"
    finally:
        client.loop_stop()
        client.disconnect()
    return result[0]


def test_mosquitto_requires_auth_when_users_set(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mq", users={"alice": "s3cret"}).start()
    try:
        assert _connack(broker.port, "alice", "s3cret") == "Success"
        assert _connack(broker.port, "alice", "wrong") == "Not authorized"
    finally:
        broker.stop()


def test_mosquitto_on_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    first = Mosquitto(tmp_path / "a").start()
    try:
        clash = Mosquitto(tmp_path / "b", port=first.port)
        with pytest.raises(ServiceError, match="already in use"):
            clash.start()
    finally:
        first.stop()
