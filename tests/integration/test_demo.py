"""`lorawatch demo` with nothing configured: its own servers, the ingester, the alert worker, the
dashboard and the demo town's simulated feeds, as `scripts/demo` brings them up.

`scripts/demo` is `bash scripts/setup.sh` (installs what is missing: apt and a TimescaleDB build,
which a test must not run, and which the suite's own servers show is done) followed by
`exec .venv/bin/lorawatch demo "$@"` from the repository root. The end-to-end test runs that second
step exactly: the installed console script, from the repository root, in a process of its own (so
Ctrl-C handling, shutdown and what it leaves behind are the real ones), with LORAWATCH_DATA_DIR
pointed at a clean directory and the database and broker URLs unset.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import psycopg
import pytest

from dashboard.passwords import Passwords
from lorawatch.cmd_demo import DEMO_USERS, DemoError, bind_dashboard, demo_logins, fresh_start
from lorawatch.services import Postgres, free_port
from simulators import demo_town, fleet, scenarios
from simulators.run import RunConfig
from store import users

REPO = Path(__file__).resolve().parents[2]


# --- the demo town's plan (no servers) --------------------------------------------------------------


def test_demo_town_is_a_town_with_an_eventful_start() -> None:
    gullies = scenarios.get("demo-town-gullies").build(RunConfig(fleet=demo_town.GULLIES))
    care = scenarios.get("demo-town-care").build(RunConfig(fleet=demo_town.FLATS))
    start = gullies.start

    assert len(gullies.placements) == 60 and all(p.kind == "gully" for p in gullies.placements)
    far = max(fleet.distance_km(*fleet.CENTRE, p.latitude, p.longitude) for p in gullies.placements)
    assert far < 1.5
    for p in gullies.placements:
        assert p.sensor_height_mm is not None and p.outlet_invert_mm is not None
        assert 0 < p.outlet_invert_mm < p.sensor_height_mm

    homes = {(p.latitude, p.longitude) for p in care.placements}
    flats = {p.care_group for p in care.placements}
    assert len(homes) == 1 and len(flats) == 12  # one care home (one place) with twelve flats
    assert fleet.distance_km(*fleet.CENTRE, *next(iter(homes))) < 1.5
    assert all(sum(p.care_group == flat for p in care.placements) == 5 for flat in flats)

    early = [label for label in gullies.labels if label.label == "storm" and label.start - start < 30 * 60]
    assert len(early) > 50  # the planned storm, over the whole town
    over_warning = [
        label
        for label in early
        for p in gullies.placements
        if p.device.device_id == label.device_id
        and p.sensor_height_mm is not None
        and p.outlet_invert_mm is not None
        and 100 * label.extra["peak_mm"] / (p.sensor_height_mm - p.outlet_invert_mm) >= 40
    ]
    assert 5 <= len(over_warning) <= 15  # several gullies past the flood warning level, not all
    blocked = {label.device_id for label in gullies.labels if label.label == "blockage" and label.start == start}
    assert blocked == set(demo_town.BLOCKED)
    falls = [label for label in care.labels if label.label == "fall"]
    assert any(math.isclose(label.start - care.start, demo_town.FALL_AFTER_S) for label in falls)


# --- pieces of the command against real servers ----------------------------------------------------


def test_the_dashboard_moves_to_a_free_port_when_its_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sock, moved = bind_dashboard("127.0.0.1", port)
        with sock:
            assert moved and sock.getsockname()[1] != port
    free = free_port()
    sock, moved = bind_dashboard("127.0.0.1", free)
    with sock:
        assert not moved and sock.getsockname()[1] == free


def test_a_rerun_starts_afresh_unless_the_last_run_still_runs(tmp_path: Path, postgres: Postgres | None) -> None:
    old = tmp_path / "postgres" / "data"
    old.mkdir(parents=True)
    (tmp_path / "mosquitto").mkdir()
    (tmp_path / "mosquitto" / "mosquitto.db").write_bytes(b"queued messages of the last run")
    (old / "postmaster.pid").write_text("2147483646\n")  # no such process: the last run stopped uncleanly
    fresh_start(tmp_path, postgres=True, mosquitto=True)
    assert not (tmp_path / "postgres").exists() and not (tmp_path / "mosquitto").exists()

    if postgres is None:
        pytest.skip("needs the suite's own cluster (a live postmaster to point at)")
    old.mkdir(parents=True)
    (old / "postmaster.pid").write_text((postgres.data / "postmaster.pid").read_text())
    with pytest.raises(DemoError, match="another `lorawatch demo`"):
        fresh_start(tmp_path, postgres=True, mosquitto=True)
    assert (old / "postmaster.pid").exists()  # nothing pulled from under the running server


def test_demo_logins_are_created_then_reset_on_a_rerun(db_url: str) -> None:
    cheap = Passwords("cheapest")
    first = demo_logins(db_url, cheap)
    assert {(login.username, login.role) for login in first} == set(DEMO_USERS.items())
    with psycopg.connect(db_url) as conn:
        users.set_disabled(conn, "care", True)
    second = demo_logins(db_url, cheap)  # the same data directory again: no error, new passwords
    assert {login.username for login in second} == set(DEMO_USERS)
    old = {login.username: login.password for login in first}
    with psycopg.connect(db_url) as conn:
        for login in second:
            creds = users.credentials(conn, login.username)
            assert creds is not None and not creds.disabled and creds.role == login.role
            assert login.password != old[login.username] and len(login.password) >= 12
            assert cheap.verify(creds.password_hash, login.password)
            assert not cheap.verify(creds.password_hash, old[login.username])
        actions = [row[0] for row in conn.execute("SELECT action FROM audit_log WHERE actor = 'demo' ORDER BY id")]
    assert actions.count("user_added") == 3 and actions.count("password_changed") == 3
    assert actions.count("user_enabled") == 1


# --- the whole demo ----------------------------------------------------------------------------------


class Output:
    """A process's standard output, line by line, read in a thread so the test never blocks on it."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._ended = False
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _next(self, timeout: float) -> bool:
        """Take the next line into `lines` (False: none came in time, or the stream ended)."""
        if self._ended:
            return False
        try:
            line = self._queue.get(timeout=max(0.01, timeout))
        except queue.Empty:
            return False
        if line is None:
            self._ended = True
            return False
        self.lines.append(line)
        return True

    def until(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first line matching `pattern`, reading on for up to `timeout` s until one comes."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if found := re.search(pattern, line):
                    return found
            seen = len(self.lines)
            if not self._next(deadline - time.monotonic()):
                pytest.fail(
                    f"no line matching {pattern!r} within {timeout} s; the demo printed:\n" + "\n".join(self.lines)
                )

    def rest(self, timeout: float) -> None:
        """Read on to the end of the stream (for up to `timeout` s)."""
        deadline = time.monotonic() + timeout
        while self._next(deadline - time.monotonic()):
            pass


def _lorawatch_script() -> list[str]:
    """The console script scripts/demo execs (.venv/bin/lorawatch), beside this interpreter."""
    found = shutil.which("lorawatch", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "lorawatch"]


def _login(base: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    assert response.json()["role"] == DEMO_USERS[username]
    return client


def _kinds(client: httpx.Client) -> dict[str, int]:
    response = client.get("/api/v1/devices", params={"limit": 500})
    assert response.status_code == 200, response.text
    kinds: dict[str, int] = {}
    for item in response.json()["items"]:
        kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
    return kinds


def _alerts(client: httpx.Client) -> set[tuple[str, str]]:
    """(category, device or gateway) of every alert the client's role can see."""
    response = client.get("/api/v1/alerts", params={"limit": 500})
    assert response.status_code == 200, response.text
    return {(item["category"], item["device_id"] or item["gateway_id"]) for item in response.json()["items"]}


def _wait_for(client: httpx.Client, category: str, timeout: float) -> set[tuple[str, str]]:
    """The client's alerts once one of `category` is among them (or `timeout` has passed)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = _alerts(client)
        if any(c == category for c, _ in seen) or time.monotonic() > deadline:
            return seen
        time.sleep(1.0)


def _refuses(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _left_running(session: int, marker: str) -> list[str]:
    """Processes still in the demo's session, or naming its data directory (postgres -D, mosquitto -c)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
            sid = int(stat.rsplit(")", 1)[1].split()[4])
            if sid == session or marker in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


@contextlib.contextmanager
def _held_port() -> Iterator[int]:
    """A loopback port something else listens on for the whole test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _use_the_dashboard(base: str, logins: dict[str, str]) -> None:
    """Log in as each demo user; check what each sees over the API and the pages, and that the storm
    and the fall (minutes into the data: seconds at 600x) have raised alerts."""
    with contextlib.ExitStack() as clients:
        admin, highways, care = (
            clients.enter_context(contextlib.closing(_login(base, name, logins[name])))
            for name in ("admin", "highways", "care")
        )
        assert _kinds(admin) == {"gully": 60, "care": 60}
        assert _kinds(highways) == {"gully": 60}  # care data sealed by row-level security
        assert _kinds(care) == {"care": 60}
        seen = _wait_for(care, "fall", 25)
        assert ("fall", "care-001-bedroom") in seen, seen
        assert all(subject.startswith("care-") for _, subject in seen), seen  # only care alerts
        seen = _wait_for(highways, "flood", 25)
        assert any(category == "flood" for category, _ in seen), seen
        assert not any(subject.startswith("care-") for _, subject in seen), seen
    # The pages, through the login form as a person would: each role lands on its home page.
    for name, home in (("highways", "/overview"), ("care", "/inbox")):
        with httpx.Client(base_url=base, timeout=10) as person:
            landed = person.post("/login", data={"username": name, "password": logins[name]})
            assert landed.status_code == 303 and landed.headers["location"] == home, landed.text
            overview, inbox = person.get("/overview"), person.get("/inbox")
        assert inbox.status_code == 200 and "text/html" in inbox.headers["content-type"]
        assert "<h1>Alert inbox</h1>" in inbox.text
        if name == "highways":
            assert overview.status_code == 200 and "<h1>Flood-risk overview</h1>" in overview.text
            assert "Gullies by risk (60)" in overview.text and 'data-device="gully-0001"' in overview.text
            assert 'data-category="flood"' in inbox.text and 'data-category="fall"' not in inbox.text
        else:
            assert overview.status_code == 403  # the flood-risk overview is not for carers
            assert 'data-category="fall"' in inbox.text and 'data-category="flood"' not in inbox.text


def _ctrl_c(proc: subprocess.Popen[str]) -> None:
    """What a terminal's Ctrl-C does: SIGINT to the whole foreground process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)


def _clean_up(proc: subprocess.Popen[str], data: Path) -> None:
    """After a failure: Ctrl-C, then SIGKILL to what is left of the demo (so nothing outlives the test)."""
    if proc.poll() is None:
        _ctrl_c(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    for left in _left_running(proc.pid, str(data)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(left.split(":")[0]), signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_demo_brings_up_the_whole_system_from_a_clean_data_dir(service_root: Path) -> None:
    data = service_root / f"demo-{uuid.uuid4().hex[:8]}"
    errors = service_root / f"{data.name}.stderr"
    env = {k: v for k, v in os.environ.items() if k not in ("LORAWATCH_DATABASE_URL", "LORAWATCH_MQTT_URL")}
    env.pop("LORAWATCH_API_DATABASE_URL", None)
    with _held_port() as taken, errors.open("w") as stderr:
        env |= {
            "LORAWATCH_DATA_DIR": str(data),
            "LORAWATCH_SERVE_HOST": "127.0.0.1",
            "LORAWATCH_SERVE_PORT": str(taken),  # taken: the demo must say so and use another port
        }
        # --for bounds the run should the test not get as far as its Ctrl-C.
        cmd = [*_lorawatch_script(), "demo", "--for", "60", "--every", "5", "--speed", "600"]
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True
        )
        out = Output(proc)
        try:
            url = out.until(r"^dashboard: (http://127\.0\.0\.1:(\d+)/)$", 90)
            base, port = url[1].rstrip("/"), int(url[2])
            for name in DEMO_USERS:
                out.until(rf"log in as {name}\s", 5)
            logins = dict(re.findall(r"log in as (\S+)\s+password (\S+)\s+sees ", "\n".join(out.lines)))
            assert set(logins) == set(DEMO_USERS)
            assert port != taken and f"port {taken} is in use" in "\n".join(out.lines)
            _use_the_dashboard(base, logins)
            out.until(r"^status: .*\buplinks [1-9]", 10)
            _ctrl_c(proc)
            assert proc.wait(30) == 0
        finally:
            _clean_up(proc, data)
            out.rest(5)
            assert proc.stdout is not None
            proc.stdout.close()

    text = "\n".join(out.lines)
    assert "starting PostgreSQL + TimescaleDB" in text and "starting Mosquitto" in text
    last = [line for line in out.lines if line.startswith("status:")][-1]
    found = [re.search(rf"\b{name} (\d+)", last) for name in ("uplinks", "devices")]
    assert all(m and int(m[1]) > 0 for m in found), last
    assert "dead_letters {}" in last  # simulated feeds are well-formed: nothing rejected
    assert out.lines[-1] == "demo stopped"
    assert "Traceback" not in errors.read_text()  # Ctrl-C stops every part quietly, simulators too
    assert (data / "postgres" / "data" / "PG_VERSION").exists()
    db_port = int(re.search(r"database ready .*@127\.0\.0\.1:(\d+)/", text)[1])  # type: ignore[index]
    mqtt_port = int(re.search(r"ingesting from mqtt://127\.0\.0\.1:(\d+)", text)[1])  # type: ignore[index]
    assert all(_refuses(p) for p in (port, db_port, mqtt_port))
    assert _left_running(proc.pid, str(data)) == []
