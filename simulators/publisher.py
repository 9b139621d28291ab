"""Publish a stream of messages to a broker: as fast as possible, or paced by the messages' own times
(real time or a speed factor), with a progress bar, returning only when every publish is complete.

The client is driven from this thread (no paho network thread): `publish()` writes straight to the
socket and `loop()` is called every few hundred messages (and while waiting for the next paced
message) to read PUBACKs and keep the connection alive. "Complete" means written to the socket for
QoS 0 and acknowledged by the broker for QoS 1 (paho's `on_publish`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from tqdm import tqdm

from simulators.capture import Message
from simulators.mqttclient import BrokerError, MqttParams, connect
from simulators.timefmt import NS

#: Let the broker fall at most this many messages behind before waiting for acknowledgements.
WINDOW = 20_000
_LOOP_EVERY = 256


@dataclass(frozen=True, slots=True)
class PublishStats:
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


class _Counter:
    def __init__(self) -> None:
        self.done = 0

    def on_publish(self, _c: mqtt.Client, _u: object, _mid: int, _r: Any, _p: Any) -> None:
        self.done += 1


def publish(
    params: MqttParams,
    messages: Iterable[Message],
    *,
    qos: int | None = None,
    speed: float | None = None,
    progress: bool | None = None,
    total: int | None = None,
    timeout: float = 60.0,
) -> PublishStats:
    """Publish `messages` in order. `qos` overrides each message's own; `speed` None is as fast as
    possible, otherwise message times are replayed at `speed` x real time (1.0 = real time).
    `progress` None shows a bar only on a terminal."""
    client = connect(params)
    counter = _Counter()
    client.on_publish = counter.on_publish
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total, unit="msg", disable=not show, mininterval=0.5, dynamic_ncols=True)
    sent = 0
    started = time.monotonic()
    first_ns: int | None = None
    try:
        for message in messages:
            if speed is not None:
                if first_ns is None:
                    first_ns = message.time_ns
                _wait_until(client, started + (message.time_ns - first_ns) / NS / speed)
            info = client.publish(
                message.topic, message.payload, qos if qos is not None else message.qos, message.retain
            )
            if info.rc == mqtt.MQTT_ERR_NO_CONN:
                msg = f"lost the connection to MQTT broker {params.url} after {sent} messages"
                raise BrokerError(msg)
            sent += 1
            if sent % _LOOP_EVERY == 0:
                _service(client, params)
                bar.update(_LOOP_EVERY)
                while sent - counter.done > WINDOW:
                    _service(client, params, 0.01)
        bar.update(sent % _LOOP_EVERY)
        deadline = time.monotonic() + timeout
        while counter.done < sent:
            if time.monotonic() > deadline:
                msg = (
                    f"MQTT broker {params.url} completed {counter.done} of {sent} publishes in {timeout:g} s"
                )
                raise BrokerError(msg)
            _service(client, params, 0.05)
        elapsed = time.monotonic() - started
    finally:
        bar.close()
        client.disconnect()
    return PublishStats(sent, elapsed)


def _service(client: mqtt.Client, params: MqttParams, timeout: float = 0.0) -> None:
    """Flush writes, read acknowledgements, keep alive."""
    rc = client.loop(timeout=timeout)
    if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
        msg = f"lost the connection to MQTT broker {params.url}: {mqtt.error_string(rc)}"
        raise BrokerError(msg)


def _wait_until(client: mqtt.Client, due: float) -> None:
    """Sleep until `due` (monotonic) while keeping the connection serviced."""
    while True:
        remaining = due - time.monotonic()
        if remaining <= 0:
            return
        client.loop(timeout=min(remaining, 1.0))
