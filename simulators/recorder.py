"""Record a live feed into a capture file: subscribe to topic filters and write one capture line per
message until a message count or a duration is reached."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TextIO

import paho.mqtt.client as mqtt

from simulators.capture import Message
from simulators.mqttclient import BrokerError, MqttParams, connect, service
from simulators.timefmt import now_ns


def record(
    params: MqttParams,
    out: TextIO,
    topics: Sequence[str] = ("#",),
    *,
    count: int | None = None,
    duration: float | None = None,
    qos: int = 1,
    on_ready: Any = None,
) -> int:
    """Write messages to `out` until `count` messages or `duration` seconds (whichever first; neither
    means until Ctrl-C). `on_ready` is called once the subscriptions are acknowledged (tests use
    it to start publishing). Returns the number of messages written."""
    client = connect(params)
    state = {"n": 0, "acked": 0}

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if count is not None and state["n"] >= count:
            return
        out.write(Message(msg.topic, bytes(msg.payload), now_ns(), msg.qos, bool(msg.retain)).to_line() + "\n")
        state["n"] += 1

    def on_subscribe(_c: mqtt.Client, _u: object, _mid: int, _codes: Any, _p: Any) -> None:
        state["acked"] += 1

    client.on_message = on_message
    client.on_subscribe = on_subscribe
    try:
        for topic in topics:
            client.subscribe(topic, qos)
        while state["acked"] < len(topics):
            _loop(client, params)
        if on_ready is not None:
            on_ready()
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while (count is None or state["n"] < count) and (deadline is None or time.monotonic() < deadline):
                _loop(client, params)
        except KeyboardInterrupt:  # Ctrl-C ends a recording without a count or duration
            pass
    finally:
        client.disconnect()
    return state["n"]


def _loop(client: mqtt.Client, params: MqttParams) -> None:
    rc = service(client, 0.2)
    if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
        msg = f"lost the connection to MQTT broker {params.url}: {mqtt.error_string(rc)}"
        raise BrokerError(msg)
