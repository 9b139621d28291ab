"""Plain MQTT connection parameters and a connected paho client (paho-mqtt 2.x, callback API v2).

`simulators` takes host, port and credentials as plain values (the composition root parses
`LORAWATCH_MQTT_URL`). The client runs without a network thread, driven through paho's external-loop
API (`service()` below: select, `loop_read`, `loop_write`, `loop_misc`). A `publish()` then writes
straight to the socket with one system call; with `loop_start()` or `loop()` paho also pokes a wake-up
socket pair on every publish, and the network thread competes for the GIL.
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode


class BrokerError(RuntimeError):
    """The broker cannot be reached or refused us; the message names the broker (never the password)."""


@dataclass(frozen=True, slots=True)
class MqttParams:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    client_id: str = ""
    keepalive: int = 60

    @property
    def url(self) -> str:
        """The broker as a URL without the password, for messages."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def connect(params: MqttParams, *, timeout: float = 10.0, max_inflight: int = 1000) -> mqtt.Client:
    """A connected MQTT 3.1.1 client (TTS speaks only 3.1.1), or `BrokerError`."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=params.client_id, protocol=mqtt.MQTTv311, clean_session=True
    )
    if params.username is not None:
        client.username_pw_set(params.username, params.password)
    if params.tls:
        client.tls_set()
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(0)
    outcome: dict[str, Any] = {}

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        outcome["reason"] = reason

    client.on_connect = on_connect
    try:
        client.connect(params.host, params.port, keepalive=params.keepalive)
    except (OSError, ValueError) as exc:
        msg = f"cannot connect to MQTT broker {params.url}: {exc}"
        raise BrokerError(msg) from None
    deadline = time.monotonic() + timeout
    while "reason" not in outcome:
        if time.monotonic() > deadline:
            client.disconnect()
            msg = f"no answer from MQTT broker {params.url} within {timeout:g} s"
            raise BrokerError(msg)
        if service(client, 0.1) != mqtt.MQTT_ERR_SUCCESS and "reason" not in outcome:
            msg = f"MQTT broker {params.url} closed the connection"
            raise BrokerError(msg)
    reason = outcome["reason"]
    if reason.is_failure:
        msg = f"MQTT broker {params.url} refused the connection: {reason}"
        raise BrokerError(msg)
    return client


def service(client: mqtt.Client, timeout: float = 0.0) -> MQTTErrorCode:
    """One round of network work: wait up to `timeout` for the socket, read what arrived (acks,
    messages), write what is queued, and keep the connection alive."""
    sock = client.socket()
    if sock is None:
        return mqtt.MQTT_ERR_NO_CONN
    pending = getattr(sock, "pending", None)
    if pending is not None and pending() > 0:
        timeout = 0.0
    writable = [sock] if client.want_write() else []
    readable, _, _ = select.select([sock], writable, [], timeout)
    rc = mqtt.MQTT_ERR_SUCCESS
    if readable:
        rc = client.loop_read(max_packets=1000)
    if rc == mqtt.MQTT_ERR_SUCCESS and client.want_write():
        rc = client.loop_write()
    if rc == mqtt.MQTT_ERR_SUCCESS:
        rc = client.loop_misc()
    return rc
