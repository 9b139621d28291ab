"""Ingest throughput: `lorawatch ingest` against a bare paho subscriber and a naive bridge, one run.

    python -m benchmarks.ingest [--messages 30000] [--naive-messages 2000] [--rounds 3]

All three consume the same stream of TTS uplinks (a 1,000-gully fleet of four device models) from the
same private Mosquitto. Each gets the stream preloaded into its own persistent QoS 1 session and is
timed from connect until it has handled every message, so the figure is the consumer's own capacity,
not the publisher's:

- bare:      a paho subscriber that only counts messages (the ceiling: what receiving costs);
- naive:     decodes each message like lorawatch, then INSERTs and commits each one on its own;
- lorawatch: the real Ingester (batching, COPY, natural-key dedup, acks after commit).

The database is a private durable TimescaleDB cluster (fsync on, as in production), a fresh database
for each writer. Targets (DESIGN.md): lorawatch >= 0.6x bare and >= 7x naive, with zero loss:
published = stored + duplicates + dead letters.

The machines this runs on are shared, and their speed drifts by 20 % or more within a minute, which
moves both rates. So bare and lorawatch are measured in alternating rounds, each round's ratio from two
measurements seconds apart, and the median ratio is the result (every round is printed).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

import decoders
from ingest.pipeline import Processor
from ingest.service import IngestConfig, Ingester, MqttConfig
from lorawatch.services import Mosquitto, Postgres
from store import migrate
from store.records import READING_INDEX, UplinkRecord

TOPIC_FILTER = "v3/+/devices/+/up"
MODELS: dict[str, Callable[[int], dict[str, Any]]] = {
    "dragino/ldds75": lambda d: {
        "Bat": 3.6,
        "Distance": f"{d} mm",
        "Interrupt_flag": 0,
        "TempC_DS18B20": "11.20",
        "Sensor_flag": 1,
    },
    "milesight-iot/em310-udl": lambda d: {"battery": 92, "distance": d, "tilt": "normal"},
    "milesight-iot/em500-udl": lambda d: {"battery": 88, "distance": d},
    "decentlab/dl-mbx": lambda d: {
        "protocol_version": 2,
        "device_id": 303,
        "distance": {"displayName": "Distance", "unit": "mm", "value": d},
        "number_of_valid_samples": {"displayName": "Number of valid samples", "value": 10},
        "battery_voltage": {"displayName": "Battery voltage", "unit": "V", "value": 3.6},
    },
}


def stream(n: int, seed: int = 1) -> list[tuple[str, bytes]]:
    """`n` TTS v3 uplinks from 1,000 gullies, 15 minutes apart per device, shaped as TTS sends them."""
    rng = random.Random(seed)
    models = list(MODELS)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        dev = i % 1000
        model = models[dev % len(models)]
        f_port, payload = decoders.encode(model, MODELS[model](rng.randint(300, 1500)))
        t = t0 + timedelta(minutes=15 * (i // 1000), seconds=dev)
        stamp = t.isoformat().replace("+00:00", "Z")
        brand, model_id = model.split("/")
        body = {
            "end_device_ids": {
                "device_id": f"gully-{dev:04d}",
                "application_ids": {"application_id": "gullies"},
                "dev_eui": f"A84041{dev:010X}",
                "dev_addr": f"260B{dev:04X}",
            },
            "correlation_ids": [f"as:up:01JB{i:022d}", f"ns:uplink:01JC{i:022d}"],
            "received_at": stamp,
            "uplink_message": {
                "session_key_id": base64.b64encode(f"s{dev:014d}".encode()).decode(),
                "f_port": f_port,
                "f_cnt": 1 + i // 1000,
                "frm_payload": base64.b64encode(payload).decode(),
                "rx_metadata": [
                    {
                        "gateway_ids": {"gateway_id": f"gw-{dev % 20}", "eui": f"B827EBFFFE{dev % 20:06X}"},
                        "time": stamp,
                        "timestamp": 3172654908,
                        "rssi": -90 - dev % 30,
                        "channel_rssi": -90 - dev % 30,
                        "snr": 7.5,
                        "channel_index": 2,
                        "received_at": stamp,
                    }
                ],
                "settings": {
                    "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7, "coding_rate": "4/5"}},
                    "frequency": "867300000",
                    "timestamp": 3172654908,
                },
                "received_at": stamp,
                "consumed_airtime": "0.051456s",
                "version_ids": {"brand_id": brand, "model_id": model_id},
            },
        }
        out.append((f"v3/gullies@ttn/devices/gully-{dev:04d}/up", json.dumps(body).encode()))
    return out


def _client(client_id: str, port: int, *, clean: bool = False) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean, protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(2000)
    c.connect("127.0.0.1", port)
    return c


def preload(broker: Mosquitto, client_id: str, messages: list[tuple[str, bytes]]) -> None:
    """Create `client_id`'s persistent QoS 1 session, leave, and publish `messages` into it."""
    sub = _client(client_id, broker.port)
    sub.loop_start()
    sub.subscribe(TOPIC_FILTER, qos=1)[1]
    time.sleep(0.3)
    sub.disconnect()
    sub.loop_stop()
    pub = _client(f"{client_id}-pub", broker.port, clean=True)
    pub.loop_start()
    infos = [pub.publish(t, p, qos=1) for t, p in messages]
    for info in infos:
        info.wait_for_publish(60)
    pub.disconnect()
    pub.loop_stop()


def forget(broker: Mosquitto, client_id: str) -> None:
    """Drop `client_id`'s persistent session, so that the next preload fills only the next consumer's."""
    c = _client(client_id, broker.port, clean=True)
    c.disconnect()


def consume(broker: Mosquitto, client_id: str, n: int, handle: Callable[[mqtt.MQTTMessage], None]) -> float:
    """Connect `client_id` to its preloaded session, run `handle` on each message, return messages/s."""
    done = threading.Event()
    count = 0

    def on_message(_c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        nonlocal count
        handle(m)
        count += 1
        if count == n:
            done.set()

    start = time.perf_counter()
    c = _client(client_id, broker.port)
    c.on_message = on_message
    c.loop_start()
    assert done.wait(1200), f"{client_id} handled {count} of {n}"
    elapsed = time.perf_counter() - start
    c.disconnect()
    c.loop_stop()
    return n / elapsed


def bare(broker: Mosquitto, n: int) -> float:
    """Messages per second a paho subscriber merely receives (and acknowledges)."""
    return consume(broker, "bench-bare", n, lambda _m: None)


def naive(broker: Mosquitto, db: str, n: int) -> float:
    """Same decoding as lorawatch, but one INSERT and one COMMIT per message (device ids are cached, so
    each message costs its uplink and readings statements and a commit, as before device refs)."""
    processor = Processor(lambda _app, _dev: None)
    distance, battery = READING_INDEX["distance_mm"], READING_INDEX["battery_v"]
    refs: dict[tuple[str, str], int] = {}
    with psycopg.connect(db) as conn:

        def handle(m: mqtt.MQTTMessage) -> None:
            out = processor.process(m.topic, bytes(m.payload), datetime.now(UTC))
            if not isinstance(out, UplinkRecord):
                return
            u = out.uplink
            key = (u.application_id, u.device_id)
            ref = refs.get(key)
            if ref is None:
                row = conn.execute(
                    "INSERT INTO devices (application_id, device_id, source) VALUES (%s, %s, %s) "
                    "ON CONFLICT (application_id, device_id) DO UPDATE SET source = excluded.source RETURNING id",
                    (u.application_id, u.device_id, u.source),
                ).fetchone()
                assert row is not None
                ref = refs[key] = row[0]
            conn.execute(
                "INSERT INTO uplinks (time, uplink_key, application_id, device_id, source, f_port, f_cnt, "
                "frm_payload, decoded) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (u.time, u.uplink_key, u.application_id, u.device_id, u.source, u.f_port, u.f_cnt, u.frm_payload,
                 u.decoded),
            )  # fmt: skip
            for reading in out.readings:
                conn.execute(
                    "INSERT INTO readings (time, device_ref, distance_mm, battery_v) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    (reading.time, ref, reading.values[distance], reading.values[battery]),
                )
            conn.commit()

        return consume(broker, "bench-naive", n, handle)


def lorawatch(broker: Mosquitto, db: str, n: int, workers: int) -> tuple[float, dict[str, int]]:
    """The real Ingester, timed from its MQTT connect (when the preloaded stream starts to flow, as for
    the other two) until every message is committed. Worker start-up is not message handling."""
    cfg = IngestConfig(
        database_url=db,
        mqtt=MqttConfig("127.0.0.1", broker.port, client_id="bench-lorawatch", topics=(TOPIC_FILTER,), qos=1),
        workers=workers,
    )
    ing = Ingester(cfg)
    stop = threading.Event()
    thread = threading.Thread(target=ing.run, args=(stop,), daemon=True)
    thread.start()
    while ing.connected_at is None:
        time.sleep(0.001)
    start = ing.connected_at
    t = ing.totals
    deadline = time.monotonic() + 600
    while t.stored + t.duplicates + t.dead_lettered + t.skipped < n:
        assert time.monotonic() < deadline, f"lorawatch handled {t.stored} of {n}"
        time.sleep(0.002)
    elapsed = time.perf_counter() - start
    stop.set()
    thread.join(30)
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM uplinks), (SELECT value FROM counters WHERE name = "
            "'duplicates'), (SELECT count(*) FROM dead_letters)"
        ).fetchone()
    assert row is not None
    counts = {"published": n, "stored": row[0], "duplicates": row[1], "dead_letters": row[2]}
    return n / elapsed, counts


def _database(pg: Postgres, name: str) -> str:
    with psycopg.connect(pg.admin_url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = pg.admin_url(name)
    migrate.migrate(url)
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=30_000, help="stream length for bare and lorawatch")
    parser.add_argument("--naive-messages", type=int, default=2_000, help="stream length for the naive bridge")
    parser.add_argument("--workers", type=int, default=2, help="lorawatch ingest worker processes")
    parser.add_argument("--rounds", type=int, default=3, help="bare/lorawatch pairs; the median ratio counts")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="lorawatch-bench-"))
    root.chmod(0o711)
    pg = Postgres(root / "pg", durable=True).start()
    broker = Mosquitto(root / "mq").start()
    try:
        print(f"generating {args.messages} TTS uplinks ...", file=sys.stderr)
        messages = stream(args.messages)
        preload(broker, "bench-naive", messages[: args.naive_messages])
        naive_rate = naive(broker, _database(pg, "bench_naive"), args.naive_messages)
        forget(broker, "bench-naive")
        print(f"naive insert+commit    : {naive_rate:10.0f} msg/s", flush=True)
        bare_rates, lw_rates, ratios, lost = [], [], [], 0
        for r in range(1, args.rounds + 1):
            preload(broker, "bench-bare", messages)
            bare_rate = bare(broker, len(messages))
            forget(broker, "bench-bare")
            preload(broker, "bench-lorawatch", messages)
            lw_rate, counts = lorawatch(broker, _database(pg, f"bench_lorawatch_{r}"), len(messages), args.workers)
            forget(broker, "bench-lorawatch")
            missing = counts["published"] - counts["stored"] - counts["duplicates"] - counts["dead_letters"]
            lost += missing
            bare_rates.append(bare_rate)
            lw_rates.append(lw_rate)
            ratios.append(lw_rate / bare_rate)
            print(
                f"round {r}: bare {bare_rate:8.0f} msg/s, lorawatch {lw_rate:8.0f} msg/s -> {lw_rate / bare_rate:.2f}x"
                f"  {counts} lost={missing}",
                flush=True,
            )
        ratio, lw_rate = statistics.median(ratios), statistics.median(lw_rates)
        print(f"bare paho subscriber   : {statistics.median(bare_rates):10.0f} msg/s (median)")
        print(f"lorawatch ingest       : {lw_rate:10.0f} msg/s (median)")
        print(f"ratio vs bare          : {ratio:10.2f}x   (median of the rounds; target >= 0.6x)")
        print(f"ratio vs naive         : {lw_rate / naive_rate:10.2f}x   (target >= 7x)")
        print(f"lost                   : {lost:10d}")
        ok = ratio >= 0.6 and lw_rate >= 7 * naive_rate and lost == 0
        print("PASS" if ok else "BELOW TARGET")
        return 0 if lost == 0 else 1
    finally:
        broker.stop()
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
