"""Publish a stream of messages to a broker: as fast as possible, or paced by the messages' own times
(real time or a speed factor), with a progress bar, returning only when every publish is complete.

The client is driven from this thread (see `mqttclient.service`): `publish()` writes straight to the
socket, and the network is serviced every few hundred messages (and while waiting for the next paced
message) to read PUBACKs and keep the connection alive. "Complete" means written to the socket for
QoS 0 and acknowledged by the broker for QoS 1; paho marks each message's `MQTTMessageInfo` when it
is, and those are checked oldest first (no per-message callback: for QoS 0 paho would build a reason
code and a properties object per message to call it).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from tqdm import tqdm

from simulators.capture import Message
from simulators.mqttclient import BrokerError, MqttParams, connect, service
from simulators.timefmt import NS

#: Let the broker fall at most this many messages behind before waiting for it.
WINDOW = 20_000
_SERVICE_EVERY = 256


@dataclass(frozen=True, slots=True)
class PublishStats:
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


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
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total, unit="msg", disable=not show, mininterval=0.5, dynamic_ncols=True)
    pending: deque[mqtt.MQTTMessageInfo] = deque()
    sent = 0
    started = time.monotonic()
    first_ns: int | None = None
    last: mqtt.MQTTMessageInfo | None = None
    try:
        for message in messages:
            if speed is not None:
                if first_ns is None:
                    first_ns = message.time_ns
                _wait_until(client, params, started + (message.time_ns - first_ns) / NS / speed)
            level = message.qos if qos is None else qos
            info = client.publish(message.topic, message.payload, level, message.retain)
            if info.rc == mqtt.MQTT_ERR_NO_CONN:
                msg = f"lost the connection to MQTT broker {params.url} after {sent} messages"
                raise BrokerError(msg)
            if level or sent % _SERVICE_EVERY == 0:
                pending.append(info)
            last = info
            sent += 1
            if sent % _SERVICE_EVERY == 0:
                _service(client, params)
                bar.update(_SERVICE_EVERY)
                _settle(pending)
                while len(pending) > WINDOW // (1 if level else _SERVICE_EVERY):
                    _service(client, params, 0.01)
                    _settle(pending)
        bar.update(sent % _SERVICE_EVERY)
        if last is not None:
            pending.append(last)
        deadline = time.monotonic() + timeout
        while _settle(pending):
            if time.monotonic() > deadline:
                msg = f"MQTT broker {params.url} did not complete {len(pending)} publishes in {timeout:g} s"
                raise BrokerError(msg)
            _service(client, params, 0.05)
        elapsed = time.monotonic() - started
    finally:
        bar.close()
        client.disconnect()
    return PublishStats(sent, elapsed)


def _settle(pending: deque[mqtt.MQTTMessageInfo]) -> int:
    """Drop completed publishes from the front; returns how many remain. QoS 0 messages go out in
    order, so a QoS 0 entry stands for every message before it."""
    while pending and pending[0].is_published():
        pending.popleft()
    return len(pending)


def _service(client: mqtt.Client, params: MqttParams, timeout: float = 0.0) -> None:
    rc = service(client, timeout)
    if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
        msg = f"lost the connection to MQTT broker {params.url}: {mqtt.error_string(rc)}"
        raise BrokerError(msg)


def _wait_until(client: mqtt.Client, params: MqttParams, due: float) -> None:
    """Sleep until `due` (monotonic) while keeping the connection serviced."""
    while (remaining := due - time.monotonic()) > 0:
        _service(client, params, min(remaining, 1.0))
