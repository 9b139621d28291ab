"""Simulator throughput: TTS uplinks of a gully fleet generated, and generated + published to a local
Mosquitto, per second. Target (DESIGN.md): at least 10,000 uplinks/s generated and published.

    python -m benchmarks.simulate [--uplinks 100000] [--fleet 1000] [--workers N] [--qos 0]

Figures from one run on the same machine:

- generated/s (1 process):  scenario model + device encoding + TTS JSON, into memory;
- published/s (bare):       the same messages, already built, published (the paho/broker ceiling);
- CPU per uplink:           process CPU time of generating and of publishing one uplink (what the rates
                            would be on an idle core; the machines are shared and noisy);
- generated+published/s:    what `lorawatch simulate --fast --workers N` does, streamed until the broker
                            has every message (QoS 0: written to the socket; QoS 1: acknowledged),
                            with 1 worker (in process) and with N worker processes (default: one per core).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from lorawatch.services import Mosquitto
from lorawatch.settings import parse_mqtt_url
from simulators import feed, parallel, scenarios
from simulators.capture import Message
from simulators.mqttclient import MqttParams
from simulators.publisher import PublishStats, publish
from simulators.run import DEFAULT_START, RunConfig

TARGET = 10_000.0
SCENARIO = "gully-storms"


def config(uplinks: int, fleet: int) -> RunConfig:
    """A run of about `uplinks` uplinks (15-minute intervals)."""
    return RunConfig(fleet=fleet, seed=1, start=DEFAULT_START, duration=uplinks / fleet * 900.0)


def messages(cfg: RunConfig, workers: int) -> Iterator[Message]:
    if workers > 1:
        return iter(parallel.ParallelFeed(parallel.Job(SCENARIO, cfg, "tts", 1), workers))
    return feed.messages(scenarios.get(SCENARIO).build(cfg), "tts", 1)


def line(name: str, stats: PublishStats) -> str:
    return f"{name:<34} {stats.rate:>10,.0f}   ({stats.rate / TARGET:.2f}x the {TARGET:,.0f}/s target)"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.simulate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uplinks", type=int, default=100_000, help="messages per measurement (about)")
    parser.add_argument("--fleet", type=int, default=1000, help="gullies")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="generator processes")
    parser.add_argument("--qos", type=int, choices=(0, 1), default=0)
    args = parser.parse_args()
    cfg = config(args.uplinks, args.fleet)

    t0, c0 = time.perf_counter(), time.process_time()
    built = list(messages(cfg, 1))
    generated = len(built) / (time.perf_counter() - t0)
    generate_cpu = (time.process_time() - c0) / len(built) * 1e6

    with tempfile.TemporaryDirectory(prefix="lorawatch-bench-") as tmp, Mosquitto(Path(tmp)) as broker:
        target = parse_mqtt_url(broker.url)
        params = MqttParams(target.host, target.port, client_id="bench-simulate")
        c0 = time.process_time()
        bare = publish(params, built, qos=args.qos)
        publish_cpu = (time.process_time() - c0) / bare.messages * 1e6
        del built
        one = publish(params, messages(cfg, 1), qos=args.qos)
        many = publish(params, messages(cfg, args.workers), qos=args.qos)

    print(f"uplinks per measurement            {one.messages:>10,}   (fleet {args.fleet}, QoS {args.qos})")
    print(f"{'generated/s (1 process)':<34} {generated:>10,.0f}")
    print(f"{'published/s (bare, prebuilt)':<34} {bare.rate:>10,.0f}")
    print(f"{'CPU per uplink: generate / publish':<34} {generate_cpu:>7.0f} µs / {publish_cpu:.0f} µs (this process)")
    print(line("generated+published/s (1 process)", one))
    print(line(f"generated+published/s ({args.workers} workers)", many))


if __name__ == "__main__":
    main()
