"""Zero loss across faults: kill -9 of the ingester, a 30 s database outage, a broker restart, and a
TTS disconnect backfilled from a local Storage Integration API. Real servers throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ingest.backfill import StorageApi, run_backfill
from lorawatch.services import Mosquitto, Postgres
from store import migrate
from tests.integration.ingest.conftest import Publisher, running_ingester, scalar, wait_until
from tests.lns import raw, topic_for, tts_uplink

pytestmark = pytest.mark.slow


def _bodies(n: int, start: int = 1, device: str = "gully-017") -> list[tuple[str, bytes]]:
    out = []
    for f_cnt in range(start, start + n):
        body = tts_uplink(device, f_cnt=f_cnt)
        out.append((topic_for(body), raw(body)))
    return out


@pytest.fixture
def own_postgres(service_root: Path, request: pytest.FixtureRequest) -> Iterator[Postgres]:
    """A cluster this test may stop and start (the session one is shared)."""
    pg = Postgres(service_root / f"pg-{request.node.name[:20]}", durable=True).start()
    migrate.migrate(pg.url)
    yield pg
    pg.destroy()


def _start_ingest_process(db: str, broker: Mosquitto, client_id: str, log: Path) -> subprocess.Popen[bytes]:
    """`lorawatch ingest` as a real process (so it can be killed -9), logging to `log`."""
    env = {
        **os.environ,
        "LORAWATCH_DATABASE_URL": db,
        "LORAWATCH_MQTT_URL": broker.url,
        "LORAWATCH_MQTT_CLIENT_ID": client_id,
        "LORAWATCH_MQTT_QOS": "1",
        "LORAWATCH_INGEST_BATCH_MS": "20",
        "LORAWATCH_INGEST_BATCH_SIZE": "200",
    }
    start = log.stat().st_size if log.exists() else 0
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lorawatch", "ingest"], env=env, stderr=sink, stdout=subprocess.DEVNULL
        )

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"ingester exited early with {proc.returncode}: {log.read_text()[-2000:]}")
        return b"ingest_ready" in log.read_bytes()[start:]

    wait_until(ready, timeout=30, what="ingester process ready")
    return proc


def test_kill_9_mid_stream_loses_nothing(db_url: str, fresh_mosquitto: Mosquitto, tmp_path: Path) -> None:
    messages = _bodies(3000)
    log = tmp_path / "ingest.log"
    proc = _start_ingest_process(db_url, fresh_mosquitto, "kill9-ingest", log)
    pub = Publisher(fresh_mosquitto.port)
    try:
        sender = threading.Thread(target=pub.publish_many, args=(messages,))
        sender.start()
        wait_until(lambda: (scalar(db_url, "SELECT count(*) FROM uplinks") or 0) >= 300, what="300 stored")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stored_at_kill = scalar(db_url, "SELECT count(*) FROM uplinks")
        sender.join(60)
        assert stored_at_kill < len(messages), "the kill came too late to test anything"
        proc = _start_ingest_process(db_url, fresh_mosquitto, "kill9-ingest", log)  # same persistent session
        wait_until(
            lambda: scalar(db_url, "SELECT count(*) FROM uplinks") == len(messages),
            timeout=60,
            what="every message stored after the restart",
        )
        time.sleep(0.5)  # anything still in flight would show up as an extra row
        assert scalar(db_url, "SELECT count(*) FROM uplinks") == len(messages)
        assert scalar(db_url, "SELECT count(DISTINCT f_cnt) FROM uplinks") == len(messages)
        assert scalar(db_url, "SELECT count(*) FROM dead_letters") == 0
    finally:
        pub.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def test_thirty_second_database_outage_loses_nothing(own_postgres: Postgres, fresh_mosquitto: Mosquitto) -> None:
    pub = Publisher(fresh_mosquitto.port)
    db = own_postgres.url
    try:
        with running_ingester(db, fresh_mosquitto.port, ("v3/+/devices/+/up",), buffer=500) as ing:
            pub.publish_many(_bodies(100))
            wait_until(lambda: ing.totals.stored == 100, what="first 100 stored")
            own_postgres.stop("fast")
            started = time.monotonic()
            for chunk in range(10):  # keep publishing through the outage, more than the buffer holds
                pub.publish_many(_bodies(100, start=101 + chunk * 100))
                time.sleep(2.5)
            assert ing.ready.is_set()
            # Operators must see "arriving but not stored", not "nothing arriving".
            received = ing.metrics.registry.get_sample_value("lorawatch_ingest_received_total")
            assert received is not None and received > 100, received
            assert ing.totals.stored == 100
            remaining = 30 - (time.monotonic() - started)
            if remaining > 0:
                time.sleep(remaining)
            own_postgres.start()
            wait_until(lambda: ing.totals.stored == 1100, timeout=90, what="all 1100 stored after the outage")
        assert scalar(db, "SELECT count(*) FROM uplinks") == 1100
        assert ing.totals.dropped == 0
    finally:
        pub.close()


def test_broker_restart_loses_nothing(db_url: str, fresh_mosquitto: Mosquitto) -> None:
    with running_ingester(db_url, fresh_mosquitto.port, ("v3/+/devices/+/up",), client_id="restart-ingest") as ing:
        pub = Publisher(fresh_mosquitto.port)
        pub.publish_many(_bodies(200))
        pub.close()
        fresh_mosquitto.restart()
        pub = Publisher(fresh_mosquitto.port)  # published before the ingester is back: queued for its session
        pub.publish_many(_bodies(200, start=201))
        pub.close()
        wait_until(lambda: ing.totals.stored == 400, timeout=60, what="400 stored across the restart")
    assert scalar(db_url, "SELECT count(*) FROM uplinks") == 400


class _StorageApi(BaseHTTPRequestHandler):
    """Speaks the TTS Storage Integration: NDJSON of {"result": ApplicationUp}, bearer auth."""

    bodies: ClassVar[list[dict[str, Any]]] = []
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        if self.headers.get("Authorization") != "Bearer NNSXS.TEST":
            self.send_response(401)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for body in type(self).bodies:
            self.wfile.write(json.dumps({"result": body}).encode() + b"\n\n")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def storage_api() -> Iterator[tuple[str, type[_StorageApi]]]:
    handler = type("Handler", (_StorageApi,), {"bodies": [], "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_tts_gap_is_backfilled_from_the_storage_api(
    db_url: str, fresh_mosquitto: Mosquitto, storage_api: tuple[str, type[_StorageApi]]
) -> None:
    url, handler = storage_api
    # Uplinks 1..50 were published while we were away: only the Storage API has them.
    handler.bodies = [tts_uplink(f_cnt=n) for n in range(1, 51)]
    api = StorageApi(url, "NNSXS.TEST")
    topics = ("v3/gully-net@ttn/devices/+/up",)
    with running_ingester(db_url, fresh_mosquitto.port, topics, qos=0, storage_api=api) as ing:
        wait_until(lambda: ing.totals.stored == 50, what="backfill of 50")
        pub = Publisher(fresh_mosquitto.port)
        pub.publish_many(_bodies(20, start=41), qos=0)  # live traffic overlapping the backfill window
        pub.close()
        wait_until(lambda: ing.totals.stored + ing.totals.duplicates == 70, what="live 20 handled")
        # Reconnect (a TTS disconnect): the ingester backfills again, from the newest uplink it holds.
        fresh_mosquitto.restart()
        wait_until(lambda: len(handler.requests) == 2, timeout=30, what="second backfill request")
        wait_until(lambda: ing.totals.duplicates == 10 + 50, what="second backfill all duplicates")
    assert scalar(db_url, "SELECT count(*) FROM uplinks") == 60
    first, second = handler.requests
    assert "/api/v3/as/applications/gully-net/packages/storage/uplink_message?" in first
    assert "after=" not in first and "order=received_at" in first
    assert "after=2026-01-06T02%3A58%3A00Z" in second  # newest stored (f_cnt 60, 03:00) minus 2 min


def test_storage_api_failure_is_logged_and_live_ingest_continues(
    db_url: str, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    from lorawatch.services import free_port

    api = StorageApi(f"http://127.0.0.1:{free_port()}", "NNSXS.TEST", timeout_s=2)
    with running_ingester(db_url, mosquitto.port, ("v3/gully-net/devices/+/up",), qos=0, storage_api=api) as ing:
        wait_until(lambda: any("backfill_failed" in r.message for r in caplog.records), what="failure logged")
        pub = Publisher(mosquitto.port)
        body = tts_uplink(f_cnt=5)
        pub.publish("v3/gully-net/devices/gully-017/up", raw(body), qos=0)
        pub.close()
        wait_until(lambda: ing.totals.stored == 1, what="live uplink stored")


def test_backfill_ends_when_the_ingester_stops_and_counts_only_what_it_handed_over(
    storage_api: tuple[str, type[_StorageApi]],
) -> None:
    url, handler = storage_api
    handler.bodies = [tts_uplink(f_cnt=n) for n in range(1, 21)]
    accepted: list[bytes] = []

    def submit(_topic: str, body: bytes) -> bool:
        if len(accepted) == 5:  # the ingester is stopping: nothing more is taken
            return False
        accepted.append(body)
        return True

    n = run_backfill(StorageApi(url, "NNSXS.TEST"), ["gully-net"], None, submit)
    assert n == 5
    assert [json.loads(b)["uplink_message"]["f_cnt"] for b in accepted] == [1, 2, 3, 4, 5]
