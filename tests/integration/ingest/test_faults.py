"""Zero loss across faults: kill -9 of the ingester or of one of its workers, database outages (with
the MQTT connection kept alive and memory bounded in bytes throughout), a broker restart, QoS 0 drops
and TTS disconnects backfilled from a local Storage Integration API, and a large backfill that must not
crowd out live traffic. Real servers throughout."""

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


def _start_ingest_process(
    db: str, broker: Mosquitto, client_id: str, log: Path, **env_extra: str
) -> subprocess.Popen[bytes]:
    """`lorawatch ingest` as a real process (so it can be killed -9), logging to `log`."""
    env = {
        **os.environ,
        "LORAWATCH_DATABASE_URL": db,
        "LORAWATCH_MQTT_URL": broker.url,
        "LORAWATCH_MQTT_CLIENT_ID": client_id,
        "LORAWATCH_MQTT_QOS": "1",
        "LORAWATCH_INGEST_BATCH_MS": "20",
        "LORAWATCH_INGEST_BATCH_SIZE": "200",
        **env_extra,
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


# --- a worker killed -9 ------------------------------------------------------------------------------------


def _fleet(devices: int, per_device: int, prefix: str = "fleet") -> list[tuple[str, bytes]]:
    """Interleaved uplinks of many devices (so both workers get some of every batch)."""
    out = []
    for f_cnt in range(1, per_device + 1):
        for d in range(devices):
            body = tts_uplink(f"{prefix}-{d:03d}", f_cnt=f_cnt)
            out.append((topic_for(body), raw(body)))
    return out


def test_kill_9_of_a_worker_mid_stream_loses_nothing_and_the_ingester_keeps_running(
    db_url: str, fresh_mosquitto: Mosquitto
) -> None:
    """Before, the parent died of the broken pipe (EOFError) when a worker was killed."""
    messages = _fleet(20, 200)
    pub = Publisher(fresh_mosquitto.port)
    try:
        with running_ingester(
            db_url, fresh_mosquitto.port, ("v3/+/devices/+/up",), batch_size=100, client_id="kill-worker"
        ) as ing:
            pids = ing.worker_pids()
            assert len(pids) == 2
            sender = threading.Thread(target=pub.publish_many, args=(messages,))
            sender.start()
            wait_until(lambda: (scalar(db_url, "SELECT count(*) FROM uplinks") or 0) >= 400, what="400 stored")
            os.kill(pids[0], signal.SIGKILL)
            sender.join(60)
            wait_until(
                lambda: scalar(db_url, "SELECT count(*) FROM uplinks") == len(messages),
                timeout=90,
                what="every message stored after the worker's restart",
            )
            assert ing.totals.worker_restarts == 1
            wait_until(lambda: len(ing.worker_pids()) == 2, what="the replacement worker answering")
            assert pids[0] not in ing.worker_pids() and pids[1] in ing.worker_pids()
            more = _fleet(5, 10, prefix="after")
            pub.publish_many(more)  # and it keeps running
            wait_until(
                lambda: scalar(db_url, "SELECT count(*) FROM uplinks") == len(messages) + len(more),
                what="the stream after the restart",
            )
        time.sleep(0.3)
        assert scalar(db_url, "SELECT count(*) FROM uplinks") == len(messages) + len(more)
        assert scalar(db_url, "SELECT count(DISTINCT (device_id, f_cnt)) FROM uplinks") == len(messages) + len(more)
        assert scalar(db_url, "SELECT count(*) FROM dead_letters") == 0
    finally:
        pub.close()


# --- backpressure: paho's thread never waits ---------------------------------------------------------------


def test_a_minute_long_outage_with_a_small_buffer_keeps_the_mqtt_connection_and_loses_nothing(
    own_postgres: Postgres, tmp_path: Path
) -> None:
    """Before, paho's thread blocked in the callback once the buffer was full: no keepalive went out,
    and the broker dropped the client after 1.5 keepalives (45 s). Now QoS 1 messages that find the
    buffer full are left unacknowledged with the broker and redelivered after recovery."""
    broker = Mosquitto(tmp_path / "mq", log_types=("error", "warning", "notice")).start()
    db = own_postgres.url
    client_id = "outage-ingest"
    pub = Publisher(broker.port)
    try:
        with running_ingester(
            db, broker.port, ("v3/+/devices/+/up",), buffer=200, batch_size=50, client_id=client_id
        ) as ing:
            pub.publish_many(_bodies(100))
            wait_until(lambda: ing.totals.stored == 100, what="first 100 stored")
            log_before = broker.log_file.read_text()
            own_postgres.stop("fast")
            started = time.monotonic()
            for chunk in range(30):  # 3,000 through the outage: fifteen times what the buffer holds
                pub.publish_many(_bodies(100, start=101 + chunk * 100))
                time.sleep(1.5)
            remaining = 62 - (time.monotonic() - started)
            if remaining > 0:
                time.sleep(remaining)
            outage_log = broker.log_file.read_text()[len(log_before) :]
            assert "exceeded timeout" not in outage_log, outage_log[-2000:]
            assert client_id not in outage_log, f"the ingester's connection changed during the outage: {outage_log}"
            assert ing.totals.mqtt_disconnects == 0
            assert ing.metrics.registry.get_sample_value("lorawatch_ingest_mqtt_connected") == 1
            assert ing.totals.deferred > 0, "the buffer never filled: the test tests nothing"
            assert ing.totals.stored == 100
            own_postgres.start()
            wait_until(lambda: scalar(db, "SELECT count(*) FROM uplinks") == 3100, timeout=240, what="all 3100 stored")
            time.sleep(1)
            assert ing.totals.redelivery_reconnects >= 1
            assert ing.totals.mqtt_disconnects == 0
            assert ing.totals.dropped == 0
            deferred = ing.metrics.registry.get_sample_value("lorawatch_ingest_deferred_total")
            assert deferred == ing.totals.deferred
        assert scalar(db, "SELECT count(*) FROM uplinks") == 3100
        assert scalar(db, "SELECT count(DISTINCT f_cnt) FROM uplinks") == 3100
        assert scalar(db, "SELECT count(*) FROM dead_letters") == 0
    finally:
        pub.close()
        broker.stop()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_memory_stays_bounded_by_bytes_when_huge_messages_arrive_during_an_outage(
    own_postgres: Postgres, tmp_path: Path
) -> None:
    """Before, the buffer was bounded by count only: 800 messages of 1 MB were 800 MB in the ingester.
    Now an oversize message is cut to 64 KiB in paho's thread and the buffer is bounded by bytes too."""
    # A broker that lets 1 MB through, and does not rewrite 800 MB of persistence every second.
    broker = Mosquitto(tmp_path / "mq", max_packet_size=None, persistence=False).start()
    log = tmp_path / "ingest.log"
    proc = _start_ingest_process(
        own_postgres.url, broker, "rss-ingest", log, LORAWATCH_INGEST_BUFFER_BYTES=str(16 * 1024 * 1024)
    )
    pub = Publisher(broker.port)
    try:
        own_postgres.stop("fast")
        peak = _rss_mb(proc.pid)
        pad = b"x" * 1_000_000
        sender = threading.Thread(
            target=pub.publish_many,
            args=(
                [
                    (f"v3/gully-net@ttn/devices/big-{n % 10}/up", b'{"n": %d, "pad": "' % n + pad + b'"}')
                    for n in range(800)
                ],
            ),
        )
        sender.start()
        while sender.is_alive():
            peak = max(peak, _rss_mb(proc.pid))
            time.sleep(0.05)
        sender.join()
        for _ in range(60):  # and while the broker keeps delivering
            peak = max(peak, _rss_mb(proc.pid))
            time.sleep(0.05)
        assert peak < 300, f"the ingester grew to {peak:.0f} MB"
        own_postgres.start()

        def dead() -> int:  # rows, not repeats: a redelivered dead letter is the same row seen again
            return int(scalar(own_postgres.url, "SELECT count(*) FROM dead_letters WHERE stage = 'size'"))

        wait_until(lambda: dead() == 800, timeout=180, what="800 size dead letters")
        time.sleep(1)
        assert scalar(own_postgres.url, "SELECT count(*) FROM dead_letters") == 800  # one row each
        assert scalar(own_postgres.url, "SELECT max(length(raw)) FROM dead_letters") == 65536
        reason = scalar(own_postgres.url, "SELECT reason FROM dead_letters LIMIT 1")
        assert "message of 10000" in reason and "over the limit of 262144 bytes" in reason, reason
        assert proc.poll() is None
    finally:
        pub.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        broker.stop()


# --- QoS 0 drops are backfilled; a backfill never crowds out live traffic -------------------------------------


class _PagedStorageApi(BaseHTTPRequestHandler):
    """The TTS Storage Integration as it pages: `after` (exclusive) and `limit` on `received_at`."""

    bodies: ClassVar[list[dict[str, Any]]] = []
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        from datetime import datetime
        from urllib.parse import parse_qs, urlsplit

        type(self).requests.append(self.path)
        query = parse_qs(urlsplit(self.path).query)
        after = datetime.fromisoformat(query["after"][0]) if "after" in query else None
        limit = int(query.get("limit", ["1000"])[0])
        page = [b for b in type(self).bodies if after is None or datetime.fromisoformat(b["received_at"]) > after][
            :limit
        ]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b"".join(json.dumps({"result": b}).encode() + b"\n\n" for b in page))

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def paged_storage_api() -> Iterator[tuple[str, type[_PagedStorageApi]]]:
    handler = type("Handler", (_PagedStorageApi,), {"bodies": [], "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _recent(n: int, device: str, start: int = 1, seconds_ago: float = 3600) -> list[dict[str, Any]]:
    """TTS uplinks of `device` timestamped over the last `seconds_ago` seconds, oldest first."""
    from datetime import UTC, datetime, timedelta

    t0 = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    step = seconds_ago / (n + 1)
    return [
        tts_uplink(device, f_cnt=f, time=t0 + timedelta(seconds=step * i))
        for i, f in enumerate(range(start, start + n))
    ]


def test_qos0_drops_during_an_outage_are_counted_and_their_window_backfilled(
    own_postgres: Postgres, fresh_mosquitto: Mosquitto, paged_storage_api: tuple[str, type[_PagedStorageApi]]
) -> None:
    """Before, a QoS 0 message that found the buffer full was dropped and only counted."""
    url, handler = paged_storage_api
    db = own_postgres.url
    topics = ("v3/gully-net@ttn/devices/+/up",)
    bodies = _recent(600, "gully-017", seconds_ago=30)  # TTS stored them as we would have received them
    api = StorageApi(url, "NNSXS.TEST")
    with running_ingester(db, fresh_mosquitto.port, topics, qos=0, storage_api=api, buffer=100, batch_size=20) as ing:
        wait_until(lambda: len(handler.requests) == 1, what="the backfill on connect (nothing stored yet)")
        own_postgres.stop("fast")
        pub = Publisher(fresh_mosquitto.port)
        pub.publish_many([(topic_for(b), raw(b)) for b in bodies], qos=0)
        pub.close()
        wait_until(lambda: ing.totals.received == 600, what="600 received")
        assert ing.totals.dropped >= 400, ing.totals
        handler.bodies = bodies  # TTS storage has them all
        own_postgres.start()
        wait_until(lambda: scalar(db, "SELECT count(*) FROM uplinks") == 600, timeout=90, what="all 600 stored")
        assert ing.totals.backfilled >= ing.totals.dropped
        assert ing.metrics.registry.get_sample_value("lorawatch_ingest_dropped_total") == ing.totals.dropped
    assert len(handler.requests) >= 2 and "after=" in handler.requests[1]


def test_a_large_backfill_never_crowds_out_live_qos0_messages(
    db_url: str, fresh_mosquitto: Mosquitto, paged_storage_api: tuple[str, type[_PagedStorageApi]]
) -> None:
    """Before, the backfill filled the buffer to the brim, so live QoS 0 messages found it full and
    were dropped. Now it hands over messages only while the buffer is below half."""
    url, handler = paged_storage_api
    handler.bodies = [b for d in range(20) for b in _recent(1000, f"old-{d:02d}", seconds_ago=86_400)]
    handler.bodies.sort(key=lambda b: b["received_at"])
    live = _recent(2000, "live-001", seconds_ago=60)
    api = StorageApi(url, "NNSXS.TEST")
    topics = ("v3/gully-net@ttn/devices/+/up",)
    pub = Publisher(fresh_mosquitto.port)
    try:
        with running_ingester(
            db_url, fresh_mosquitto.port, topics, qos=0, storage_api=api, buffer=1000, batch_size=200
        ) as ing:
            wait_until(lambda: ing.totals.stored > 1000, what="the backfill under way")
            for start in range(0, len(live), 100):
                pub.publish_many([(topic_for(b), raw(b)) for b in live[start : start + 100]], qos=0)
                time.sleep(0.05)
            backfilled_meanwhile = ing.totals.stored < 20_000
            wait_until(lambda: scalar(db_url, "SELECT count(*) FROM uplinks") == 22_000, timeout=180, what="all stored")
            assert ing.totals.dropped == 0
            assert ing.totals.backfilled == 20_000
        assert backfilled_meanwhile, "the backfill was over before the live traffic: the test tests nothing"
        assert scalar(db_url, "SELECT count(*) FROM uplinks WHERE device_id = 'live-001'") == 2000
    finally:
        pub.close()
