"""Simulator throughput: TTS uplinks of a gully fleet generated, and generated + published to a local
Mosquitto, per second. Target (DESIGN.md): at least 10,000 uplinks/s generated and published.

    python -m benchmarks.simulate [--uplinks 100000] [--fleet 1000] [--qos 0]

Three figures from one run on the same machine:

- generated/s:            scenario model + device encoding + TTS JSON, into memory;
- published/s (bare):     the same messages, already built, published (the broker/paho ceiling);
- generated+published/s:  the whole path `lorawatch simulate --fast` takes, streamed, until the broker
                          has every message (QoS 0: written to the socket; QoS 1: acknowledged).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lorawatch.services import Mosquitto
from lorawatch.settings import parse_mqtt_url
from simulators import feed, scenarios
from simulators.capture import Message
from simulators.mqttclient import MqttParams
from simulators.publisher import publish
from simulators.run import DEFAULT_START, RunConfig

TARGET = 10_000.0


def stream(uplinks: int, fleet: int) -> tuple[int, feed.Iterator[Message]]:
    """About `uplinks` TTS messages of the gully-storms scenario (15-minute intervals)."""
    duration = uplinks / fleet * 900.0
    sim = scenarios.get("gully-storms").build(
        RunConfig(fleet=fleet, seed=1, start=DEFAULT_START, duration=duration)
    )
    return sim.expected_uplinks, feed.messages(sim, "tts", 1)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.simulate", description=__doc__)
    parser.add_argument("--uplinks", type=int, default=100_000, help="messages to generate (about)")
    parser.add_argument("--fleet", type=int, default=1000, help="gullies")
    parser.add_argument("--qos", type=int, choices=(0, 1), default=0)
    args = parser.parse_args()

    _, messages = stream(args.uplinks, args.fleet)
    t0 = time.perf_counter()
    built = list(messages)
    generated = len(built) / (time.perf_counter() - t0)

    with tempfile.TemporaryDirectory(prefix="lorawatch-bench-") as tmp, Mosquitto(Path(tmp)) as broker:
        target = parse_mqtt_url(broker.url)
        params = MqttParams(target.host, target.port, client_id="bench-simulate")
        bare = publish(params, built, qos=args.qos, progress=False)
        del built
        total, messages = stream(args.uplinks, args.fleet)
        full = publish(params, messages, qos=args.qos, progress=False, total=total)

    print(f"uplinks                   {full.messages:>10,}")
    print(f"generated/s               {generated:>10,.0f}")
    print(f"published/s (bare)        {bare.rate:>10,.0f}")
    print(
        f"generated+published/s     {full.rate:>10,.0f}   ({full.rate / TARGET:.2f}x the {TARGET:,.0f}/s target)"
    )


if __name__ == "__main__":
    main()
