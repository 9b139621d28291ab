"""Shared pieces of the notification delivery tests: a driven clock, a real HTTP receiver on loopback,
alert and outbox rows written straight with SQL (the tests do not need the engine)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg

from alerts.notifiers.webhook import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify
from lorawatch.services import free_port
from store import outbox
from store.records import OutboxEntry


class Clock:
    """A clock the test moves by hand (thread-safe): what Delivery reads instead of the system time."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now


@dataclass
class Received:
    """One request the receiver read (whatever it answered)."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    signature_ok: bool | None = None

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def key(self) -> str:
        return self.headers.get(IDEMPOTENCY_HEADER.lower(), "")


@dataclass
class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 in a thread. `respond(request) -> status` decides each answer
    (default 200); `secret` makes it verify the signature of every request; `stop()` closes the port
    (connection refused) and `start()` opens the same port again."""

    secret: str | None = None
    respond: Callable[[Received], int] = lambda _r: 200
    extra_headers: Callable[[Received], dict[str, str]] = lambda _r: {}
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                if receiver.secret is not None:
                    request.signature_ok = verify(body, receiver.secret, self.headers.get(SIGNATURE_HEADER))
                with receiver.lock:
                    receiver.received.append(request)
                status = receiver.respond(request)
                request.status = status
                try:
                    self.send_response(status)
                    for name, value in receiver.extra_headers(request).items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender is gone (killed): nothing to answer
                    pass

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ok(self) -> list[Received]:
        """Requests answered 2xx: the ones that arrived."""
        with self.lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def keys(self) -> list[str]:
        return sorted(r.key for r in self.ok())


_subjects = itertools.count()


def insert_alert(
    conn: psycopg.Connection,
    *,
    category: str = "flood",
    kind: str = "gully",
    simulated: bool = False,
    device_id: str = "gully-0042",
) -> int:
    row = conn.execute(
        "INSERT INTO alerts (rule, category, severity, subject, device_id, kind, state, simulated, opened_at) "
        "VALUES (%s, %s, 'critical', %s, %s, %s, 'firing', %s, now()) RETURNING id",
        (f"{category}-rule", category, f"device:{device_id}:{next(_subjects)}", device_id, kind, simulated),
    ).fetchone()
    assert row is not None
    return int(row[0])


def gully_payload(alert_id: int, **extra: Any) -> dict[str, Any]:
    """A payload shaped like the engine's (alerts/engine.py notification_payload)."""
    return {
        "event": "opened",
        "notification": 1,
        "simulated": False,
        "alert": {
            "id": alert_id,
            "rule": "gully-fill",
            "category": "flood",
            "severity": "critical",
            "state": "firing",
            "device_id": "gully-0042",
            "application_id": "council-gullies",
            "gateway_id": None,
            "kind": "gully",
            "opened_at": "2025-01-10T06:00:00+00:00",
            "firing_at": "2025-01-10T06:05:00+00:00",
            "resolved_at": None,
            "summary": "fill 91% above 85%",
            "value": 91.0,
            "simulated": False,
        },
        "where": {"name": "High Street outside no. 12", "latitude": 51.5, "longitude": -0.12},
        **extra,
    }


def care_payload(alert_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "event": "opened",
        "notification": 1,
        "simulated": False,
        "alert": {
            "id": alert_id,
            "rule": "fall",
            "category": "fall",
            "severity": "critical",
            "state": "firing",
            "device_id": "radar-flat12",
            "application_id": "care",
            "gateway_id": None,
            "kind": "care",
            "opened_at": "2025-01-10T03:12:00+00:00",
            "firing_at": "2025-01-10T03:12:00+00:00",
            "resolved_at": None,
            "summary": "fall",
            "value": None,
            "simulated": False,
        },
        "where": {"care_room": "12", "care_group": "Oak House"},
        **extra,
    }


def enqueue(
    db_url: str,
    n: int,
    *,
    channel: str = "webhook",
    target: str,
    route: str = "highways",
    payload: Callable[[int], dict[str, Any]] = gully_payload,
    alert: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> list[str]:
    """`n` notifications (each for an alert of its own), committed; returns their idempotency keys."""
    keys: list[str] = []
    with psycopg.connect(db_url) as conn:
        entries = []
        for i in range(n):
            alert_id = insert_alert(conn, **(alert or {}))
            key = f"alert-{alert_id}-1-{route}-{channel}-{i}"
            keys.append(key)
            entries.append(OutboxEntry(alert_id, "opened", channel, route, target, payload(alert_id), key))
        outbox.enqueue(conn, entries, now=now)
        conn.commit()
    return sorted(keys)


def outbox_rows(db_url: str) -> list[Any]:
    with psycopg.connect(db_url) as conn:
        return outbox.rows(conn)


def audit(db_url: str) -> list[tuple[int, str, str]]:
    with psycopg.connect(db_url) as conn:
        return [
            (int(r[0]), str(r[1]), str(r[2] or ""))
            for r in conn.execute("SELECT alert_id, action, note FROM alert_log WHERE actor = 'delivery' ORDER BY id")
        ]


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
