"""`lorawatch demo`: the whole system on one machine, nothing to configure.

With no LORAWATCH_DATABASE_URL and no LORAWATCH_MQTT_URL it starts its own PostgreSQL + TimescaleDB
and Mosquitto under LORAWATCH_DATA_DIR (./.lorawatch), migrates, imports a small council into the
device registry (about 60 gullies around a town centre and a care home of 12 flats, with their gully
geometry and care rooms: simulators/demo_town.py), runs the ingester, the alert worker and the
dashboard (on LORAWATCH_SERVE_HOST:LORAWATCH_SERVE_PORT, 127.0.0.1:8000, or a free port when that one
is taken), creates the demo logins `admin`, `highways` and `care`, and plays a week of the town's
gully and care feeds into the broker at a speed-up (120x: a storm, blocked gullies and a fall come in
the first minutes). It prints the dashboard's address and the logins, then what has been stored and
the open alerts, until Ctrl-C (or `--for SECONDS`). Given URLs, it uses those servers instead.

Every run with embedded servers starts afresh: the previous run's database and broker directories are
removed first. The feed is seeded, so a rerun replays the same uplinks with the same natural keys, and
on the old data every one of them would be dropped as a duplicate (and the storm and the fall would
never show again).

The demo logins get new random passwords on every run, printed once when the demo is up: the
dashboard shows care data (special-category health data, even simulated), the machine may be shared,
and a well-known password would let anyone on it log in as admin while the demo runs. Against
configured servers, where the users are kept, a rerun resets the three passwords (their old sessions
end) rather than failing.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
from pydantic import SecretStr

from alerts.worker import AlertWorker, wall_clock
from dashboard.passwords import Passwords
from ingest.service import Ingester
from lorawatch.cmd_alerts import load_ruleset
from lorawatch.cmd_ingest import ingest_config
from lorawatch.cmd_serve import api_settings
from lorawatch.cmd_simulate import write_devices
from lorawatch.notify import build_delivery
from lorawatch.services import Mosquitto, Postgres, ServiceError
from lorawatch.settings import Settings
from simulators import demo_town, scenarios
from simulators.run import RunConfig
from store import audit, migrate, registry, status, users

log = logging.getLogger(__name__)

DEMO_TOPICS = "v3/+/devices/+/up,application/+/device/+/event/+"
#: Who the demo's user changes are by, in the audit log.
DEMO_ACTOR = "demo"


@dataclass(frozen=True, slots=True)
class DemoSimulation:
    """One `lorawatch simulate` the demo runs: a scenario, its fleet size, its MQTT client id."""

    scenario: str
    fleet: int
    client_id: str


SIMULATIONS = (
    DemoSimulation("demo-town-gullies", demo_town.GULLIES, "demo-sim-gullies"),
    DemoSimulation("demo-town-care", demo_town.FLATS, "demo-sim-care"),
)
#: The demo logins: username -> role (named after it).
DEMO_USERS = {"admin": "admin", "highways": "highways", "care": "care"}
#: What each role sees in the dashboard (docs/security.md has the whole of it).
SEES = {
    "admin": "everything: flood-risk overview, every alert, care flats, device health, dead letters",
    "highways": "the flood-risk overview, gully pages, gully alerts and device health; no care data",
    "care": "the care alert inbox (falls, welfare) and the care flats; no gully data",
}


@dataclass(frozen=True, slots=True)
class DemoLogin:
    """A demo user as printed once: its name, its role and this run's password."""

    username: str
    role: str
    password: str


class DemoError(RuntimeError):
    """Part of the demo could not start; the message says which and why."""


@contextlib.contextmanager
def _servers(settings: Settings) -> Iterator[tuple[str, str]]:
    """(database URL, MQTT URL): the configured ones, or embedded servers started here."""
    stack = contextlib.ExitStack()
    with stack:
        db = settings.database_url.get_secret_value() if settings.database_url else None
        mqtt_url = settings.mqtt_url.get_secret_value() if settings.mqtt_url else None
        data = settings.data_dir.resolve()
        fresh_start(data, postgres=db is None, mosquitto=mqtt_url is None)
        if db is None:
            print(f"starting PostgreSQL + TimescaleDB in {data / 'postgres'} ...", flush=True)
            db = stack.enter_context(Postgres(data / "postgres")).url
        if mqtt_url is None:
            print(f"starting Mosquitto in {data / 'mosquitto'} ...", flush=True)
            mqtt_url = stack.enter_context(Mosquitto(data / "mosquitto")).url
        yield db, mqtt_url


def fresh_start(data: Path, *, postgres: bool, mosquitto: bool) -> None:
    """Remove the previous run's embedded server directories, unless its PostgreSQL still runs (another
    demo on the same data directory: refused rather than pulled from under it)."""
    pg = data / "postgres"
    pid_file = pg / "data" / "postmaster.pid"
    if postgres and pid_file.exists():
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pid_file.read_text().split()[0])
            if "postgres" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                msg = f"PostgreSQL still runs in {pg}: is another `lorawatch demo` using {data}? Stop it first"
                raise DemoError(msg)
    old = [d for d, embedded in ((pg, postgres), (data / "mosquitto", mosquitto)) if embedded and d.exists()]
    if old:
        print(f"starting afresh: removing the previous run's {' and '.join(d.name for d in old)} data", flush=True)
    for directory in old:
        shutil.rmtree(directory)


def _simulation(sim: DemoSimulation, speed: float, mqtt_url: str) -> subprocess.Popen[bytes]:
    """`lorawatch simulate` exactly as a user would run it, in its own process so it can be stopped.
    In a process group of its own: a terminal's Ctrl-C goes to its whole foreground group, and the
    demo stops the simulators itself, before the broker they publish to."""
    cmd = [sys.executable, "-m", "lorawatch", "simulate", sim.scenario, "--fleet", str(sim.fleet),
           "--speed", str(speed), "--duration", "7d", "--no-progress", "--client-id", sim.client_id]  # fmt: skip
    env = {**os.environ, "LORAWATCH_MQTT_URL": mqtt_url}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, process_group=0)


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a simulator, and kill it if it does not go within 10 s."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _register_fleets(db: str, data_dir: Path) -> None:
    """Write the simulations' fleets as registry files and import them, exactly as a user would with
    `lorawatch simulate --devices-out` and `lorawatch devices import`: the devices get their kind,
    location, gully geometry and care rooms before the first uplink arrives. (A fleet's placements
    do not depend on the run's start, so the default start here gives the same devices as the
    simulator's own.)"""
    data_dir.mkdir(parents=True, exist_ok=True)
    for sim in SIMULATIONS:
        path = data_dir / f"{sim.scenario}-devices.csv"
        write_devices(scenarios.get(sim.scenario).build(RunConfig(fleet=sim.fleet)), "tts", path)
        with psycopg.connect(db) as conn:
            result = registry.import_devices(conn, path.read_bytes())
        for error in result.errors:  # not expected: the simulator writes valid files
            print(error.format(str(path)), flush=True)
        done = f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}"
        print(f"device registry from {path}: {done if result.applied else 'not applied'}", flush=True)


def demo_logins(db: str, passwords: Passwords) -> list[DemoLogin]:
    """Create the demo users with new random passwords, or give existing ones new passwords (which
    ends their sessions) and enable them again: a rerun against the same database works. A user
    whose role was changed meanwhile keeps it (the printout says what it sees). Audited as `demo`."""
    fresh = {name: secrets.token_urlsafe(12) for name in DEMO_USERS}  # 16 characters, 96 bits
    hashes = {name: passwords.hash(password) for name, password in fresh.items()}
    out = []
    with psycopg.connect(db) as conn, conn.transaction():
        for name, role in DEMO_USERS.items():
            existing = users.get_user(conn, name)
            target = f"user:{name}"
            if existing is None:
                user = users.create_user(conn, name, role, hashes[name])
                audit.record(conn, actor=DEMO_ACTOR, action="user_added", target=target, detail={"role": role})
            else:
                changed = users.set_password(conn, name, hashes[name])
                assert changed is not None  # in this transaction since get_user
                user = changed
                audit.record(conn, actor=DEMO_ACTOR, action="password_changed", target=target)
                if user.disabled:
                    users.set_disabled(conn, name, False)
                    audit.record(conn, actor=DEMO_ACTOR, action="user_enabled", target=target)
            out.append(DemoLogin(user.username, user.role, fresh[name]))
    return out


def bind_dashboard(host: str, port: int) -> tuple[socket.socket, bool]:
    """A socket bound to `host`:`port`, or to a free port on `host` when that one is in use (True
    then). Bound here rather than by uvicorn, so nothing can take the port between the check and
    the use."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in (port, 0):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            if candidate != 0 and exc.errno == errno.EADDRINUSE:
                continue
            msg = f"the dashboard cannot listen on {host}:{candidate or port}: {exc.strerror}"
            raise DemoError(msg) from None
        return sock, candidate != port
    raise AssertionError("unreachable")  # pragma: no cover - port 0 either binds or raises


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


@contextlib.contextmanager
def _dashboard(settings: Settings, db: str) -> Iterator[str]:
    """The dashboard app under uvicorn in a thread, connected as lorawatch_api; yields its URL and
    shuts uvicorn down (in-flight requests finished, the pool closed) when the block ends."""
    import uvicorn

    from dashboard.app import create_app

    # The embedded cluster trusts loopback: the API's URL is the owner's with user lorawatch_api.
    embedded = settings.database_url is None
    urls = {"database_url": SecretStr(db), "api_database_url": None if embedded else settings.api_database_url}
    app_settings = dataclasses.replace(
        api_settings(settings.model_copy(update=urls)),
        data_clock=True,  # the pages judge silence by the data's time, as the demo's alert worker does
    )
    sock, moved = bind_dashboard(settings.serve_host, settings.serve_port)
    port = int(sock.getsockname()[1])
    if moved:
        print(f"port {settings.serve_port} is in use: the dashboard listens on port {port} instead", flush=True)
    config = uvicorn.Config(
        create_app(app_settings),
        host=settings.serve_host,
        port=port,
        log_config=None,  # lorawatch.logging already configured the root logger
        access_log=False,
        lifespan="on",
        server_header=False,
    )
    server = uvicorn.Server(config)

    def run() -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits when the lifespan refused to start
            server.run(sockets=[sock])

    thread = threading.Thread(target=run, name="demo-dashboard", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            msg = "the dashboard did not start (the log above says why)"
            raise DemoError(msg)
        yield _url(settings.serve_host, port)
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


def _announce(url: str, logins: list[DemoLogin]) -> None:
    """What a person needs to use the demo, printed once everything is up."""
    width = max(len(login.username) for login in logins)
    lines = [
        "",
        f"dashboard: {url}",
        f"API: {url}api/v1/docs",
        "demo logins (new passwords every run, shown only here):",
        *(
            f"  log in as {login.username:<{width}}  password {login.password}  sees {SEES.get(login.role, login.role)}"
            for login in logins
        ),
        "",
    ]
    print("\n".join(lines), flush=True)


def _thread(stack: contextlib.ExitStack, stop: threading.Event, target: Callable[..., Any], name: str) -> None:
    """Run `target(stop)` in a thread, joined (after `stop` is set) when `stack` closes."""
    runner = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
    runner.start()

    def join() -> None:
        stop.set()
        runner.join(30)

    stack.callback(join)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():  # a second Ctrl-C: stop waiting for a clean shutdown
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _demo(args, settings, stop)
    except (DemoError, ServiceError) as exc:
        print(f"lorawatch: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _demo(args: argparse.Namespace, settings: Settings, stop: threading.Event) -> int:
    with _servers(settings) as (db, mqtt_url):
        applied = migrate.migrate(db)
        print(f"database ready ({len(applied)} migrations applied): {db}", flush=True)
        _register_fleets(db, settings.data_dir.resolve())
        logins = demo_logins(db, Passwords(settings.password_profile))
        with contextlib.ExitStack() as stack:  # closed in reverse: simulators first, servers last
            if stop.is_set():
                return 0
            demo = settings.model_copy(
                update={
                    "mqtt_url": SecretStr(mqtt_url),
                    "mqtt_topics": DEMO_TOPICS,
                    "mqtt_client_id": "lorawatch-demo-ingest",
                }
            )
            ingester = Ingester(ingest_config(demo, database=db))
            _thread(stack, stop, ingester.run, "demo-ingest")
            if not ingester.ready.wait(60):
                raise DemoError("the ingester did not connect within 60 s")
            print(f"ingesting from {mqtt_url}", flush=True)
            ruleset, env = load_ruleset(settings), dict(os.environ)
            delivery = build_delivery(settings, db, clock=wall_clock, rules=ruleset, env=env)
            alerting = AlertWorker(db, ruleset, env=env, clock=DataClock(db), tick_s=5.0, deliver=delivery.run)
            _thread(stack, stop, alerting.run, "demo-alerts")
            print("alert worker running (rules: LORAWATCH_RULES_FILE or the shipped defaults)", flush=True)
            url = stack.enter_context(_dashboard(settings, db))
            sims = []
            for sim in SIMULATIONS:
                proc = _simulation(sim, args.speed, mqtt_url)
                stack.callback(_stop_process, proc)  # before the broker goes away: nothing to complain about
                sims.append((sim, proc))
            print(
                f"simulating {', '.join(s.scenario for s in SIMULATIONS)} at {args.speed}x real time; "
                "Ctrl-C stops the demo",
                flush=True,
            )
            _announce(url, logins)
            _watch(args, db, stop, sims)
        print(_status_line(status.counts(db)), flush=True)
    print("demo stopped", flush=True)
    return 0


def _watch(
    args: argparse.Namespace, db: str, stop: threading.Event, sims: list[tuple[DemoSimulation, subprocess.Popen[bytes]]]
) -> None:
    """A status line every `--every` seconds until Ctrl-C or `--for`; says once when a simulation ends."""
    deadline = time.monotonic() + args.seconds if args.seconds else None
    ended: set[str] = set()
    while not stop.wait(min(args.every, max(0.0, deadline - time.monotonic())) if deadline else args.every):
        for sim, proc in sims:
            code = proc.poll()
            if code is not None and sim.scenario not in ended:
                ended.add(sim.scenario)
                how = "finished" if code == 0 else f"exited with code {code} (its messages are above)"
                print(f"simulation {sim.scenario} {how}", flush=True)
        print(_status_line(status.counts(db)), flush=True)
        if deadline is not None and time.monotonic() >= deadline:
            break


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
            newest = status.newest_seen(conn)
        return newest if newest is not None else datetime.now(UTC)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run everything locally: simulated gully and care feeds, the alert worker and the dashboard",
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
        help="stop after this many seconds once everything is up (default: run until Ctrl-C)",
    )
    p.add_argument("--every", type=float, default=10.0, metavar="SECONDS", help="status line interval")
    p.set_defaults(handler=_run)
