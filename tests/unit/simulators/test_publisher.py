"""The raw QoS 0 batch writes exactly the PUBLISH packets paho would write for the same messages
(sizes small enough for a socket pair's buffer: nothing reads while they are written)."""

from __future__ import annotations

import socket
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, _ConnectionState

from simulators.mqttclient import MqttParams
from simulators.publisher import RawBatch


class _Stub:
    """Just what `RawBatch` uses of a paho client: its socket and whether paho has bytes queued."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def want_write(self) -> bool:
        return False

    def socket(self) -> socket.socket:
        return self.sock


def _paho_packets(messages: list[tuple[str, Any, bool]]) -> bytes:
    """What paho's own QoS 0 publish writes (MQTT 3.1.1), captured from its socket."""
    ours, theirs = socket.socketpair()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client._sock = ours  # a connected socket without a broker
    client._state = _ConnectionState.MQTT_CS_CONNECTED
    for topic, payload, retain in messages:
        client.publish(topic, payload, 0, retain)
    ours.close()
    return _read_all(theirs)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


@pytest.mark.parametrize("size", [0, 1, 100, 127, 128, 16_383, 16_384])
def test_raw_batch_writes_the_bytes_paho_writes(size):
    messages = [
        ("v3/app@tenant/devices/gully-0001/up", "x" * size, False),
        ("v3/app@tenant/devices/gully-0002/up", ("é" * size).encode(), True),
        ("v3/app@tenant/devices/gully-0001/up", '{"a":1}', False),
    ]
    ours, theirs = socket.socketpair()
    batch = RawBatch(_Stub(ours), MqttParams())  # type: ignore[arg-type]
    for topic, payload, retain in messages:
        batch.add(topic, payload, retain)
    batch.flush()
    batch.flush()  # nothing left: writes nothing
    ours.close()
    assert _read_all(theirs) == _paho_packets(messages)
