"""`lorawatch demo`: everything on one machine, nothing to configure.

With no LORAWATCH_DATABASE_URL and no LORAWATCH_MQTT_URL it starts its own PostgreSQL + TimescaleDB
and Mosquitto under LORAWATCH_DATA_DIR (./.lorawatch), migrates, imports the simulated fleets into the
device registry, runs the ingester and the alert worker, and plays a gully and a care simulation into
the broker at a speed-up, printing what has been stored and the open alerts until Ctrl-C (or
`--for SECONDS`). Given URLs, it uses those servers instead.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import psycopg
from pydantic import SecretStr

from alerts.worker import AlertWorker, wall_clock
from ingest.service import Ingester
from lorawatch.cmd_alerts import load_ruleset
from lorawatch.cmd_ingest import ingest_config
from lorawatch.cmd_simulate import write_devices
from lorawatch.notify import build_delivery
from lorawatch.services import Mosquitto, Postgres
from lorawatch.settings import Settings
from simulators import scenarios
from simulators.run import RunConfig
from store import migrate, registry, status

log = logging.getLogger(__name__)

DEMO_TOPICS = "v3/+/devices/+/up,application/+/device/+/event/+"
SIMULATIONS = (("gully-mixed", "40", "demo-sim-gullies"), ("care-mixed", "6", "demo-sim-care"))


@contextlib.contextmanager
def _servers(settings: Settings) -> Iterator[tuple[str, str]]:
    """(database URL, MQTT URL): the configured ones, or embedded servers started here."""
    stack = contextlib.ExitStack()
    with stack:
        db = settings.database_url.get_secret_value() if settings.database_url else None
        mqtt_url = settings.mqtt_url.get_secret_value() if settings.mqtt_url else None
        data = settings.data_dir.resolve()
        if db is None:
            print(f"starting PostgreSQL + TimescaleDB in {data / 'postgres'} ...", flush=True)
            db = stack.enter_context(Postgres(data / "postgres")).url
        if mqtt_url is None:
            print(f"starting Mosquitto in {data / 'mosquitto'} ...", flush=True)
            mqtt_url = stack.enter_context(Mosquitto(data / "mosquitto")).url
        yield db, mqtt_url


def _simulation(scenario: str, fleet: str, client: str, speed: float, mqtt_url: str) -> subprocess.Popen[bytes]:
    """`lorawatch simulate` exactly as a user would run it, in its own process so it can be stopped."""
    cmd = [sys.executable, "-m", "lorawatch", "simulate", scenario, "--fleet", fleet, "--speed", str(speed),
           "--duration", "7d", "--no-progress", "--client-id", client]  # fmt: skip
    env = {**os.environ, "LORAWATCH_MQTT_URL": mqtt_url}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)


def _register_fleets(db: str, data_dir: Path) -> None:
    """Write the simulations' fleets as registry files and import them, exactly as a user would with
    `lorawatch simulate --devices-out` and `lorawatch devices import`: the devices get their kind,
    location, gully geometry and care rooms before the first uplink arrives."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for scenario, fleet, _ in SIMULATIONS:
        path = data_dir / f"{scenario}-devices.csv"
        write_devices(scenarios.get(scenario).build(RunConfig(fleet=int(fleet))), "tts", path)
        with psycopg.connect(db) as conn:
            result = registry.import_devices(conn, path.read_bytes())
        for error in result.errors:  # not expected: the simulator writes valid files
            print(error.format(str(path)), flush=True)
        done = f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}"
        print(f"device registry from {path}: {done if result.applied else 'not applied'}", flush=True)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with _servers(settings) as (db, mqtt_url):
        applied = migrate.migrate(db)
        print(f"database ready ({len(applied)} migrations applied): {db}", flush=True)
        _register_fleets(db, settings.data_dir.resolve())
        demo = settings.model_copy(
            update={
                "mqtt_url": SecretStr(mqtt_url),
                "mqtt_topics": DEMO_TOPICS,
                "mqtt_client_id": "lorawatch-demo-ingest",
            }
        )
        ingester = Ingester(ingest_config(demo, database=db))
        runner = threading.Thread(target=ingester.run, args=(stop,), name="demo-ingest", daemon=True)
        runner.start()
        if not ingester.ready.wait(60):
            print("lorawatch: the ingester did not connect within 60 s", flush=True)
            stop.set()
            runner.join(15)
            return 1
        print(f"ingesting from {mqtt_url}", flush=True)
        ruleset, env = load_ruleset(settings), dict(os.environ)
        delivery = build_delivery(settings, db, clock=wall_clock, rules=ruleset, env=env)
        alerting = AlertWorker(db, ruleset, env=env, clock=DataClock(db), tick_s=5.0, deliver=delivery.run)
        alert_runner = threading.Thread(target=alerting.run, args=(stop,), name="demo-alerts", daemon=True)
        alert_runner.start()
        print("alert worker running (rules: LORAWATCH_RULES_FILE or the shipped defaults)", flush=True)
        sims = [_simulation(scenario, fleet, client, args.speed, mqtt_url) for scenario, fleet, client in SIMULATIONS]
        print(
            f"simulating {', '.join(s for s, _, _ in SIMULATIONS)} at {args.speed}x real time; Ctrl-C stops the demo",
            flush=True,
        )
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while not stop.wait(min(args.every, max(0.0, deadline - time.monotonic())) if deadline else args.every):
            print(_status_line(status.counts(db)), flush=True)
            if deadline is not None and time.monotonic() >= deadline:
                break
        for sim in sims:  # before the broker goes away, so they have nothing to complain about
            sim.terminate()
            sim.wait(10)
        stop.set()
        runner.join(30)
        alert_runner.join(30)
        print(_status_line(status.counts(db)), flush=True)
    return 0


#: What the demo's status line shows (`lorawatch status --json` has the rest).
_SHOWN = (
    "devices",
    "uplinks",
    "readings",
    "events",
    "gateways",
    "duplicates",
    "dead_letters",
    "skipped",
    "open_alerts",
)


def _status_line(counts: dict[str, object]) -> str:
    line = "status: " + ", ".join(f"{k} {counts[k]}" for k in _SHOWN if k in counts)
    by_category = counts.get("open_alerts_by_category")
    if isinstance(by_category, dict) and by_category:
        line += " (" + ", ".join(f"{category} {n}" for category, n in by_category.items()) + ")"
    return line


class DataClock:
    """The demo's clock: the newest uplink time stored. The simulations replay hours in minutes and
    never run ahead of the wall clock, so the wall clock would call every device offline; the data's
    own time is what the engine is built to take (as replay and `lorawatch score` do)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def __call__(self) -> datetime:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT max(last_seen) FROM devices").fetchone()
        newest = row[0] if row else None
        return newest if isinstance(newest, datetime) else datetime.now(UTC)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run everything locally with simulated gully and care feeds",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--speed", type=float, default=120.0, help="simulation speed-up (default 120x real time)")
    p.add_argument(
        "--for",
        dest="seconds",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    p.add_argument("--every", type=float, default=10.0, metavar="SECONDS", help="status line interval")
    p.set_defaults(handler=_run)
