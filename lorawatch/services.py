"""Private PostgreSQL + TimescaleDB clusters and Mosquitto brokers, started on demand on loopback.

`lorawatch demo` and the test suite both use these, so the tests run against exactly the servers a user
gets, never mocks of them. Each server lives in a directory of its own on a free 127.0.0.1 port.

PostgreSQL refuses to run as root, so when the caller is root the cluster directory is handed to the
`postgres` system user and the server commands run as that user (`runuser`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)

PG_MAJOR = 15
#: Seconds to wait for a server to accept connections before giving up.
START_TIMEOUT_S = 30.0
#: Mosquitto's `max_packet_size`: a little above the ingester's default message limit
#: (LORAWATCH_INGEST_MAX_MESSAGE_BYTES, 262,144 bytes of payload), leaving room for the topic and the
#: headers. Messages between the two reach the ingester and are dead-lettered (stage `size`) where an
#: operator can see them; larger ones never enter the broker at all, so no subscriber has to buffer
#: megabytes. Mosquitto (2.0) disconnects a client that sends a larger packet.
MQTT_MAX_PACKET_BYTES = 262_144 + 16_384


class ServiceError(RuntimeError):
    """A server could not be started or stopped; the message says why and where its log is."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int,
    *,
    timeout: float = START_TIMEOUT_S,
    proc: subprocess.Popen[bytes] | None = None,
    log_file: Path | None = None,
) -> None:
    """Block until 127.0.0.1:`port` accepts a TCP connection, or raise `ServiceError`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            msg = f"server exited with code {proc.returncode} before listening on port {port}"
            raise ServiceError(_with_log(msg, log_file))
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise ServiceError(_with_log(f"nothing listened on 127.0.0.1:{port} after {timeout:.0f} s", log_file))


def _ensure_port_free(port: int) -> None:
    """Refuse to start on a port something already listens on (it would look like our server)."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        msg = f"port 127.0.0.1:{port} is already in use by another process"
        raise ServiceError(msg)


def _with_log(msg: str, log_file: Path | None) -> str:
    if log_file is None or not log_file.exists():
        return msg
    tail = log_file.read_text(errors="replace").splitlines()[-15:]
    return msg + f"\n--- last lines of {log_file} ---\n" + "\n".join(tail)


def pg_bindir() -> Path:
    """Where `initdb`, `pg_ctl` and `postgres` live (Debian's layout, else PATH)."""
    debian = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
    if (debian / "pg_ctl").exists():
        return debian
    found = shutil.which("pg_ctl")
    if found is None:
        msg = f"PostgreSQL {PG_MAJOR} server not found: run scripts/setup.sh to install it"
        raise ServiceError(msg)
    return Path(found).parent


class Postgres:
    """A private PostgreSQL cluster with TimescaleDB preloaded, in `directory`, on a loopback port.

    `durable=False` turns off fsync and synchronous commit: right for tests and benchmarks of our code,
    wrong for data you want to keep (the demo keeps the default, durable).
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        durable: bool = True,
        database: str = "lorawatch",
        user: str = "lorawatch",
    ) -> None:
        self.directory = directory.resolve()
        self.data = self.directory / "data"
        self.log_file = self.directory / "postgres.log"
        self.port = port or free_port()
        self.durable = durable
        self.database = database
        self.user = user
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        """libpq URL of the cluster's database."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd="/")

    def _check_traversable(self) -> None:
        """Fail with a clear message when the `postgres` user cannot reach the cluster directory."""
        for parent in [self.directory, *self.directory.parents]:
            mode = parent.stat().st_mode
            if parent.stat().st_uid != pwd.getpwnam("postgres").pw_uid and not mode & 0o001:
                msg = (
                    f"the postgres system user cannot enter {parent} (mode {oct(mode & 0o777)}), so it "
                    f"cannot run a cluster in {self.directory}; choose a directory whose parents are "
                    "world-executable"
                )
                raise ServiceError(msg)

    def init(self) -> None:
        """Create the cluster once; an existing cluster is kept."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.directory, pw.pw_uid, pw.pw_gid)
            self._check_traversable()
        if (self.data / "PG_VERSION").exists():
            return
        res = self._run(
            str(pg_bindir() / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        if res.returncode != 0:
            msg = f"initdb failed in {self.data}:\n{res.stderr.strip()}"
            raise ServiceError(msg)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "''",
            "shared_preload_libraries": "'timescaledb'",
            "timescaledb.telemetry_level": "off",
            "max_connections": "100",
            "shared_buffers": "'256MB'",
            "work_mem": "'32MB'",
            "maintenance_work_mem": "'256MB'",
            "max_wal_size": "'2GB'",
            "log_min_messages": "warning",
            "jit": "off",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        conf = "\n".join(f"{k} = {v}" for k, v in settings.items())
        with (self.data / "postgresql.conf").open("a") as fh:
            fh.write(f"\n# lorawatch private cluster\n{conf}\n")

    def start(self) -> Self:
        """Init if needed, start, wait until it accepts connections, and create the database."""
        self.init()
        _ensure_port_free(self.port)
        res = self._run(
            str(pg_bindir() / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(int(START_TIMEOUT_S)),
            "-o",
            f"-p {self.port}",
            "start",
        )
        if res.returncode != 0:
            msg = f"PostgreSQL did not start on port {self.port}: {res.stderr.strip() or res.stdout.strip()}"
            raise ServiceError(_with_log(msg, self.log_file))
        wait_for_port(self.port, log_file=self.log_file)
        self._create_database()
        log.info("postgres_started", extra={"port": self.port, "directory": str(self.directory)})
        return self

    def _create_database(self) -> None:
        import psycopg  # the services module must import without a database driver for `--help`

        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast` rolls back clients; `immediate` is a crash-like stop)."""
        if not (self.data / "postmaster.pid").exists():
            return
        self._run(str(pg_bindir() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        """Stop and remove the whole directory."""
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Mosquitto:
    """A private Mosquitto broker in `directory` on a loopback port, with persistence on.

    Persistence and generous queue limits matter: the ingester's QoS 1 persistent session must keep
    messages queued across its own crash and across a broker restart. `max_packet_size` bounds what
    a publisher may send (see MQTT_MAX_PACKET_BYTES); None: no limit (tests that need huge messages).
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        users: dict[str, str] | None = None,
        tls: bool = False,
        max_packet_size: int | None = MQTT_MAX_PACKET_BYTES,
        log_types: tuple[str, ...] = ("error", "warning"),
        persistence: bool = True,
    ) -> None:
        self.directory = directory.resolve()
        self.port = port or free_port()
        self.users = users or {}
        self.tls = tls
        self.max_packet_size = max_packet_size
        self.log_types = log_types  # e.g. add "notice" to see connects, disconnects and keepalive timeouts
        self.persistence = persistence  # off only for tests that hold hundreds of MB and never restart it
        self.log_file = self.directory / "mosquitto.log"
        self.conf = self.directory / "mosquitto.conf"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The CA certificate that signed the broker's certificate (with `tls=True`)."""
        return self.directory / "tls" / "ca.crt"

    def _make_certificates(self) -> list[str]:
        """A private CA and a server certificate for 127.0.0.1, made once with openssl."""
        tls = self.directory / "tls"
        tls.mkdir(parents=True, exist_ok=True)
        if not (tls / "server.crt").exists():
            steps = [
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj",
                 "/CN=lorawatch test CA", "-keyout", "ca.key", "-out", "ca.crt"],
                ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                 "-keyout", "server.key", "-out", "server.csr"],
                ["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "3650", "-out", "server.crt", "-extfile", "san.cnf"],
            ]  # fmt: skip
            (tls / "san.cnf").write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
            for cmd in steps:
                res = subprocess.run(cmd, cwd=tls, capture_output=True, text=True, check=False)
                if res.returncode != 0:
                    msg = f"could not make a TLS certificate for Mosquitto: {res.stderr.strip()}"
                    raise ServiceError(msg)
        return [f"cafile {tls / 'ca.crt'}", f"certfile {tls / 'server.crt'}", f"keyfile {tls / 'server.key'}"]

    def _write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if self.users else 'true'}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.directory}/",
            "autosave_interval 1",
            f"log_dest file {self.log_file}",
            *(f"log_type {t}" for t in self.log_types),
            "max_queued_messages 1000000",
            "max_inflight_messages 20000",  # lets ack-after-commit batches fill (docs/ingest.md)
            "max_keepalive 120",
            "set_tcp_nodelay true",
        ]
        if self.max_packet_size is not None:
            lines.append(f"max_packet_size {self.max_packet_size}")
        if os.geteuid() == 0:
            lines.append("user root")
        if self.tls:
            lines.extend(self._make_certificates())
        if self.users:
            pwfile = self.directory / "passwd"
            pwfile.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            pwfile.chmod(0o600)
            subprocess.run(["mosquitto_passwd", "-U", str(pwfile)], check=True, capture_output=True)
            lines.append(f"password_file {pwfile}")
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> Self:
        """Start the broker and wait until it accepts connections."""
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            msg = "mosquitto not found: run scripts/setup.sh to install it"
            raise ServiceError(msg)
        self._write_config()
        _ensure_port_free(self.port)
        self._proc = subprocess.Popen(
            [exe, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port(self.port, proc=self._proc, log_file=self.log_file)
        except ServiceError:
            self.stop(kill=True)
            raise
        log.info("mosquitto_started", extra={"port": self.port, "directory": str(self.directory)})
        return self

    def stop(self, *, kill: bool = False) -> None:
        """Stop the broker (SIGTERM saves the persistence file; `kill=True` is a crash)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        """Stop and start again on the same port, keeping persisted sessions."""
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
