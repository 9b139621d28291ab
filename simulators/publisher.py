"""Publish a stream of messages to a broker: as fast as possible, or paced by the messages' own times
(real time or a speed factor), returning only when every publish is complete.

The client is driven from this thread (see `mqttclient.service`): `publish()` writes straight to the
socket, and the network is serviced every few hundred messages (and while waiting for the next paced
message) to read PUBACKs and keep the connection alive. "Complete" means written to the socket for
QoS 0 and acknowledged by the broker for QoS 1; paho marks each message's `MQTTMessageInfo` when it
is, and those are checked oldest first (no per-message callback: for QoS 0 paho would build a reason
code and a properties object per message to call it).

QoS 0 messages do not go through paho at all once connected: `RawBatch` frames them as MQTT 3.1.1
PUBLISH packets (the bytes paho would write) and sends a few hundred per system call. paho's own
publish costs about 55 µs a message (message info, locks, logging, one `send` each), which alone would
use more than half a core at 10,000 messages/s; the batch costs a few µs, and the broker reads far
fewer, larger segments. paho keeps the connection (CONNECT, keepalive pings, QoS 1 and DISCONNECT);
its queue is drained before a batch is written and a batch is written whole before paho runs again,
so the two never interleave on the socket.
"""

from __future__ import annotations

import select
import ssl
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from simulators.capture import Message
from simulators.mqttclient import BrokerError, MqttParams, connect, service
from simulators.timefmt import NS

#: Let the broker fall at most this many messages behind before waiting for it.
WINDOW = 20_000
_SERVICE_EVERY = 256


def _remaining_length(n: int) -> bytes:
    """The MQTT variable-length integer (7 bits a byte, low first, high bit = more)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | 0x80 if n else digit)
        if not n:
            return bytes(out)


class RawBatch:
    """QoS 0 publishes collected as packets and written to the client's socket in one go (see the
    module docstring). `flush` returns once every byte is written: that is completion for QoS 0."""

    def __init__(self, client: mqtt.Client, params: MqttParams) -> None:
        self._client = client
        self._params = params
        self._parts: list[bytes] = []
        self._topics: dict[str, bytes] = {}

    def add(self, topic: str, payload: str | bytes, retain: bool) -> None:
        name = self._topics.get(topic)
        if name is None:
            encoded = topic.encode()
            name = self._topics[topic] = len(encoded).to_bytes(2, "big") + encoded
        body = payload.encode() if isinstance(payload, str) else payload
        parts = self._parts
        parts.append(bytes((0x30 | retain,)) + _remaining_length(len(name) + len(body)))
        parts.append(name)
        parts.append(body)

    def flush(self) -> None:
        if not self._parts:
            return
        client, params = self._client, self._params
        while client.want_write():  # whatever paho queued goes first, whole
            _service(client, params, 0.05)
        data = b"".join(self._parts)
        self._parts.clear()
        sock = client.socket()
        if sock is None:
            msg = f"lost the connection to MQTT broker {params.url}"
            raise BrokerError(msg)
        while data:
            try:
                data = data[sock.send(data) :]  # a copy only after a partial write
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                select.select([sock], [sock], [], 1.0)
            except OSError as exc:
                msg = f"lost the connection to MQTT broker {params.url}: {exc}"
                raise BrokerError(msg) from None


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
    timeout: float = 60.0,
) -> PublishStats:
    """Publish `messages` in order. `qos` overrides each message's own; `speed` None is as fast as
    possible, otherwise message times are replayed at `speed` x real time (1.0 = real time).
    A progress bar is the caller's business (wrap `messages`): library code draws nothing."""
    client = connect(params)
    pending: deque[mqtt.MQTTMessageInfo] = deque()
    raw = RawBatch(client, params)
    flush_every = _SERVICE_EVERY if speed is None else 1  # paced: each message goes out when due
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
            if level == 0:
                raw.add(message.topic, message.payload, message.retain)
                sent += 1
                if sent % flush_every == 0:
                    raw.flush()
            else:
                raw.flush()
                info = client.publish(message.topic, message.payload, level, message.retain)
                if info.rc == mqtt.MQTT_ERR_NO_CONN:
                    msg = f"lost the connection to MQTT broker {params.url} after {sent} messages"
                    raise BrokerError(msg)
                pending.append(info)
                last = info
                sent += 1
            if sent % _SERVICE_EVERY == 0:
                raw.flush()
                _service(client, params)
                _settle(pending)
                while len(pending) > WINDOW:
                    _service(client, params, 0.01)
                    _settle(pending)
        raw.flush()
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
        client.disconnect()
    return PublishStats(sent, elapsed)


def _settle(pending: deque[mqtt.MQTTMessageInfo]) -> int:
    """Drop completed (acknowledged) QoS 1 publishes from the front; returns how many remain."""
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
