"""Alert latency: from MQTT publish of a fall to the alert committed, and to the webhook delivered,
while background gully traffic runs through the same pipeline.

    python -m benchmarks.alert_latency [--seconds 30] [--background 1000] [--probes 100]

Everything is real and on loopback: a private durable TimescaleDB and Mosquitto, `lorawatch ingest`
and `lorawatch alerts run` as their own processes (as deployed), a webhook receiver here. A publisher
sends `--background` gully uplinks a second (QoS 1, 1,000 gullies, levels that trip no rule); every
`seconds / probes` it also publishes one VS373 fall alarm from another care sensor (each opens a new
alert). For each probe:

- committed: publish -> the alert row is visible to a reader (this process polls every 5 ms, so the
  figure includes up to 5 ms of polling);
- stored (the baseline, ingest alone): publish -> the probe's uplink is visible (its device's
  `last_seen`), polled the same way;
- delivered: publish -> the webhook request arrives here (the notification went through the outbox).

Targets (DESIGN.md): p99 < 500 ms to committed and < 1 s to delivered. The baseline printed beside
is ingest's own share (publish to stored), so the alert engine's part is the difference.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

import decoders
from benchmarks.ingest import _database
from lorawatch.services import Mosquitto, Postgres, free_port

RULES = """\
version: 1
rules:
  - {name: fall, category: fall, type: device_alarm, applies_to: {kind: care}, event: alarm,
     match: {alarm_type: fall}, repeat_every: null}
  - {name: gully-fill, category: flood, type: threshold, applies_to: {kind: gully}, metric: fill_pct,
     warning: {above: 60}, critical: {above: 85}, for: 5m}
"""


def _body(device: str, app: str, model: str, f_port: int, payload: bytes, f_cnt: int) -> bytes:
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    brand, model_id = model.split("/")
    return json.dumps(
        {
            "end_device_ids": {"device_id": device, "application_ids": {"application_id": app}},
            "received_at": stamp,
            "uplink_message": {
                "session_key_id": base64.b64encode(device.encode()).decode(),
                "f_port": f_port,
                "f_cnt": f_cnt,
                "frm_payload": base64.b64encode(payload).decode(),
                "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1"}, "rssi": -90, "snr": 7.5}],
                "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}}},
                "received_at": stamp,
                "version_ids": {"brand_id": brand, "model_id": model_id},
            },
        }
    ).encode()


class _Hook(BaseHTTPRequestHandler):
    arrivals: ClassVar[dict[str, float]] = {}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        now = time.monotonic()
        device = json.loads(body).get("alert", {}).get("device_id")
        if device:
            _Hook.arrivals.setdefault(device, now)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return


def _percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    ms = sorted(v * 1000 for v in values)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"p50 {statistics.median(ms):7.1f} ms   p99 {p99:7.1f} ms   max {ms[-1]:7.1f} ms   (n={len(ms)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the background traffic runs")
    parser.add_argument("--background", type=int, default=1000, help="background gully uplinks per second")
    parser.add_argument("--probes", type=int, default=100, help="fall alarms published during the run")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="lorawatch-latency-"))
    root.chmod(0o711)
    pg = Postgres(root / "pg", durable=True).start()
    broker = Mosquitto(root / "mq").start()
    hook_port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", hook_port), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        db = _database(pg, "latency")
        with psycopg.connect(db) as conn:
            conn.execute(
                "INSERT INTO devices (application_id, device_id, kind, brand_id, model_id, sensor_height_mm, "
                "outlet_invert_mm) SELECT 'gullies', 'gully-' || lpad(n::text, 4, '0'), 'gully', 'milesight-iot', "
                "'em500-udl', 1000, 200 FROM generate_series(0, 999) n"
            )
            conn.execute(
                "INSERT INTO devices (application_id, device_id, kind, brand_id, model_id, care_room, care_group) "
                "SELECT 'care', 'radar-' || lpad(n::text, 4, '0'), 'care', 'milesight-iot', 'vs373', 'bedroom', "
                "'flat-' || n FROM generate_series(0, %s) n",
                (args.probes - 1,),
            )
        rules = root / "rules.yaml"
        rules.write_text(RULES)
        env = {
            **os.environ,
            "LORAWATCH_DATABASE_URL": db,
            "LORAWATCH_MQTT_URL": broker.url,
            "LORAWATCH_MQTT_QOS": "1",
            "LORAWATCH_RULES_FILE": str(rules),
            "LORAWATCH_WEBHOOK_URL": f"http://127.0.0.1:{hook_port}/hook",
            "LORAWATCH_LOG_LEVEL": "WARNING",
        }
        log = root / "services.log"
        with log.open("ab") as sink:
            for argv_ in (["ingest"], ["alerts", "run"]):
                procs.append(subprocess.Popen([sys.executable, "-m", "lorawatch", *argv_], env=env, stderr=sink,
                                              stdout=sink))  # fmt: skip
        time.sleep(3.0)  # workers spawned, subscriptions made
        for proc in procs:
            if proc.poll() is not None:
                print(log.read_text()[-3000:], file=sys.stderr)
                return 1
        published: dict[str, float] = {}
        committed: dict[str, float] = {}
        stored: dict[str, float] = {}
        poller_stop = threading.Event()

        def poll() -> None:
            """What a reader sees, every 5 ms: care devices with a stored uplink, and fall alerts."""
            with psycopg.connect(db, autocommit=True) as conn:
                while len(committed) < args.probes:
                    if poller_stop.is_set() and time.monotonic() > poll_deadline[0]:
                        break
                    rows = conn.execute(
                        "SELECT device_id, 'stored' FROM devices "
                        "WHERE application_id = 'care' AND last_seen IS NOT NULL "
                        "UNION ALL SELECT device_id, 'alert' FROM alerts WHERE category = 'fall'"
                    ).fetchall()
                    seen = time.monotonic()
                    for device, what in rows:
                        (stored if what == "stored" else committed).setdefault(device, seen)
                    time.sleep(0.005)

        poll_deadline = [float("inf")]
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="latency-pub", protocol=mqtt.MQTTv311)
        pub.max_inflight_messages_set(5000)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        em500 = "milesight-iot/em500-udl"
        vs373 = "milesight-iot/vs373"
        interval = 1.0 / args.background if args.background else None
        probe_every = args.seconds / args.probes
        start = time.monotonic()
        sent, probes, f_cnt = 0, 0, 0
        print(f"running {args.seconds:.0f} s: {args.background} gully uplinks/s and {args.probes} falls ...",
              file=sys.stderr)  # fmt: skip
        while True:
            now = time.monotonic() - start
            if now >= args.seconds and probes >= args.probes:
                break
            if probes < args.probes and now >= probes * probe_every:
                device = f"radar-{probes:04d}"
                alarm = {"events": [{"alarm_id": 1, "alarm_type": "fall", "alarm_status": "alarm_triggered"}]}
                f_port, payload = decoders.encode(vs373, alarm)
                body = _body(device, "care", vs373, f_port, payload, 1)
                published[device] = time.monotonic()
                pub.publish(f"v3/care@ttn/devices/{device}/up", body, qos=1)
                probes += 1
            if interval is not None and sent < now * args.background:
                f_cnt += 1
                device = f"gully-{sent % 1000:04d}"
                f_port, payload = decoders.encode(em500, {"battery": 90, "distance": 900})
                pub.publish(f"v3/gullies@ttn/devices/{device}/up", _body(device, "gullies", em500, f_port, payload,
                                                                         f_cnt), qos=1)  # fmt: skip
                sent += 1
                continue
            time.sleep(0.0005)
        poll_deadline[0] = time.monotonic() + 30
        poller_stop.set()
        poller.join(60)
        wait_until = time.monotonic() + 30
        while len(_Hook.arrivals) < args.probes and time.monotonic() < wait_until:
            time.sleep(0.05)
        pub.loop_stop()
        to_commit = [committed[d] - published[d] for d in published if d in committed]
        to_store = [stored[d] - published[d] for d in published if d in stored]
        delivered = [_Hook.arrivals[d] - published[d] for d in published if d in _Hook.arrivals]
        print(f"background traffic sent  : {sent} gully uplinks ({sent / args.seconds:.0f}/s)")
        print(f"publish -> uplink stored : {_percentiles(to_store)}   (ingest alone, the baseline)")
        print(f"publish -> alert committed: {_percentiles(to_commit)}   (target p99 < 500 ms)")
        print(f"publish -> webhook       : {_percentiles(delivered)}   (target p99 < 1000 ms)")
        missing = args.probes - len(delivered)
        print(f"falls not delivered      : {missing}")
        ok = (
            missing == 0
            and len(to_commit) == args.probes
            and sorted(to_commit)[int(0.99 * (len(to_commit) - 1))] < 0.5
            and sorted(delivered)[int(0.99 * (len(delivered) - 1))] < 1.0
        )
        print("PASS" if ok else "BELOW TARGET")
        return 0 if missing == 0 else 1
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.shutdown()
        broker.stop()
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
