"""The ingester's flow, through real servers: one device one worker (commit order), a bug costs its
batch and not the stream, oversize messages are cut before they are queued, the broker's packet limit,
and the settings that become the Processor's limits."""

from __future__ import annotations

import threading
import time
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from ingest.service import route_key, slot_of
from lorawatch.services import MQTT_MAX_PACKET_BYTES, Mosquitto
from tests.integration.ingest.conftest import Publisher, running_ingester, scalar, wait_until
from tests.lns import raw, topic_for, tts_uplink

TOPICS = ("v3/+/devices/+/up", "application/+/device/+/event/+")


# --- routing ------------------------------------------------------------------------------------------


def test_the_route_is_the_device_whatever_the_topic_shape() -> None:
    # TTS: the tenant is not part of the device (backfilled topics have none); the rest of the topic is not either.
    assert route_key("v3/gully-net@ttn/devices/gully-017/up") == "gully-net/gully-017"
    assert route_key("v3/gully-net/devices/gully-017/up") == "gully-net/gully-017"
    assert route_key("v3/gully-net@ttn/devices/gully-017/join") == "gully-net/gully-017"
    # ChirpStack: the EUI, whatever its case.
    cs = "application/5f0c6a1e/device/A84041000181C2F7/event/up"
    assert route_key(cs) == route_key(cs.replace("A84041000181C2F7", "a84041000181c2f7"))
    assert route_key(cs) == "5f0c6a1e/a84041000181c2f7"
    assert route_key("custom/bridge/topic") == "custom/bridge/topic"


def test_the_slot_is_a_stable_hash_not_pythons_salted_one() -> None:
    """hash() of a str changes with every process (PYTHONHASHSEED): a restarted ingester would send a
    device to another worker. crc32 does not."""
    topic = "v3/gully-net@ttn/devices/gully-017/up"
    assert slot_of(topic, 2) == zlib.crc32(b"gully-net/gully-017") % 2
    assert slot_of(topic, 7) == zlib.crc32(b"gully-net/gully-017") % 7
    # A fleet spreads over the workers.
    slots = {slot_of(f"v3/app/devices/gully-{n:04d}/up", 2) for n in range(50)}
    assert slots == {0, 1}


def test_each_devices_batches_commit_in_the_order_received(db_url: str, mosquitto: Mosquitto) -> None:
    """Two workers, many small batches: every device's uplinks must reach the change feed in the order
    they were published (a consumer that sees f_cnt 7 committed before 6 would see time go backwards)."""
    devices, per_device = 40, 60
    messages = []
    for f_cnt in range(1, per_device + 1):  # interleaved, as a fleet sends
        for d in range(devices):
            body = tts_uplink(f"order-{d:02d}", f_cnt=f_cnt)
            messages.append((topic_for(body), raw(body)))
    pub = Publisher(mosquitto.port)
    try:
        with running_ingester(db_url, mosquitto.port, TOPICS, batch_size=37, workers=2) as ing:
            pub.publish_many(messages)
            wait_until(lambda: ing.totals.stored == len(messages), timeout=60, what="all stored")
    finally:
        pub.close()
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT s.d, s.t, c.id FROM changes c, unnest(c.seen_devices, c.seen_times) AS s(d, t) ORDER BY s.d, c.id"
        ).fetchall()
    assert rows, "the change feed is empty"
    out_of_order = []
    last: dict[int, Any] = {}
    for device, t, change in rows:
        if device in last and t <= last[device]:
            out_of_order.append((device, change, t, last[device]))
        last[device] = t
    assert not out_of_order, f"{len(out_of_order)} device batches committed out of order, e.g. {out_of_order[:3]}"
    assert len(last) == devices


# --- a bug costs its batch, not the stream ---------------------------------------------------------------


def inject_writer_bug() -> None:
    """Runs first in each worker process (IngestConfig.log_setup): a writer that fails, like a bug
    would, on any batch holding an uplink of device `poison-1`."""
    from lorawatch import logging as lw_logging
    from store.writer import IngestWriter

    lw_logging.configure("INFO")
    original = IngestWriter.write

    def write(self: IngestWriter, records: Any, dead: Any = (), skipped: Any = None) -> Any:
        if any(r.device.device_id == "poison-1" for r in records):
            raise KeyError("injected bug")
        return original(self, records, dead, skipped)

    IngestWriter.write = write  # type: ignore[method-assign]


def test_a_bug_dead_letters_its_batch_as_internal_and_the_stream_goes_on(
    db_url: str, mosquitto: Mosquitto, publisher: Publisher
) -> None:
    """Before, any exception that was not an OperationalError killed the worker, the parent died of the
    broken pipe, the broker redelivered the batch, and the next start died again."""
    poison = tts_uplink("poison-1", f_cnt=1)
    with running_ingester(db_url, mosquitto.port, TOPICS, log_setup=inject_writer_bug) as ing:
        publisher.publish(topic_for(poison), raw(poison))
        wait_until(lambda: ing.totals.by_stage.get("internal") == 1, what="the poisoned batch dead-lettered")
        good = [tts_uplink("healthy-1", f_cnt=n) for n in range(1, 21)]
        publisher.publish_many([(topic_for(b), raw(b)) for b in good])
        wait_until(lambda: ing.totals.stored == 20, what="the stream goes on")
        assert ing.totals.worker_restarts == 0
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT stage, reason, error_class, raw, device_id FROM dead_letters").fetchone()
    assert row is not None
    stage, reason, error_class, kept, device = row
    assert (stage, error_class, bytes(kept), device) == ("internal", "KeyError", raw(poison), "poison-1")
    assert "injected bug" in reason
    assert scalar(db_url, "SELECT count(*) FROM uplinks") == 20


# --- size -------------------------------------------------------------------------------------------------


def test_an_oversize_message_is_cut_before_it_is_queued_and_dead_lettered_with_its_size(
    db_url: str, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path / "mq", max_packet_size=None).start()  # lets anything through
    try:
        body = tts_uplink("big-1", f_cnt=1)
        body["padding"] = "x" * 300_000
        big = raw(body)
        with running_ingester(db_url, broker.port, TOPICS) as ing:
            pub = Publisher(broker.port)
            pub.publish(topic_for(body), big)
            pub.close()
            wait_until(lambda: ing.totals.dead_lettered == 1, what="the oversize message dead-lettered")
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT stage, reason, length(raw), device_id FROM dead_letters").fetchone()
        assert row is not None
        stage, reason, kept, device = row
        assert (stage, kept, device) == ("size", 65536, "big-1")
        assert f"{len(big)} bytes" in reason and "262144" in reason
        assert ing.totals.by_stage == {"size": 1}
    finally:
        broker.stop()


def test_the_shipped_broker_refuses_a_packet_over_its_limit(db_url: str, tmp_path: Path) -> None:
    """The Mosquitto we configure (demo, tests) stops megabyte messages at the door, a little above the
    ingester's own limit, so a message between the two still reaches the ingester as a dead letter."""
    assert 262_144 < MQTT_MAX_PACKET_BYTES < 262_144 + 65_536
    broker = Mosquitto(tmp_path / "mq").start()
    try:
        assert f"max_packet_size {MQTT_MAX_PACKET_BYTES}" in broker.conf.read_text()
        with running_ingester(db_url, broker.port, TOPICS) as ing:
            disconnected = threading.Event()
            pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="too-big-publisher")
            pub.on_disconnect = lambda *_a: disconnected.set()
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            huge = tts_uplink("huge-1", f_cnt=1)
            huge["padding"] = "x" * 1_000_000
            pub.publish(topic_for(huge), raw(huge), qos=1)
            assert disconnected.wait(10), "the broker kept a client that sent a 1 MB packet"
            pub.loop_stop()
            between = tts_uplink("between-1", f_cnt=1)
            between["padding"] = "x" * 270_000  # over our limit, under the broker's
            ok = Publisher(broker.port)
            ok.publish(topic_for(between), raw(between))
            ok.close()
            wait_until(lambda: ing.totals.dead_lettered == 1, what="the in-between message dead-lettered")
            time.sleep(0.3)
            assert ing.totals.received == 1  # the 1 MB one never arrived
    finally:
        broker.stop()


# --- settings -> limits -----------------------------------------------------------------------------------


def test_settings_become_the_processors_limits_and_the_buffers(monkeypatch: Any) -> None:
    from lorawatch.cmd_ingest import ingest_config
    from lorawatch.settings import Settings

    monkeypatch.setenv("LORAWATCH_MQTT_URL", "mqtt://127.0.0.1:1883")
    monkeypatch.setenv("LORAWATCH_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("LORAWATCH_INGEST_BUFFER_BYTES", str(8 * 1024 * 1024))
    monkeypatch.setenv("LORAWATCH_INGEST_MAX_MESSAGE_BYTES", "100000")
    monkeypatch.setenv("LORAWATCH_INGEST_MAX_FUTURE_S", "120")
    monkeypatch.setenv("LORAWATCH_INGEST_MAX_AGE_DAYS", "30")
    monkeypatch.setenv("LORAWATCH_INGEST_APPLICATIONS", "gully-net, care-home ,")
    cfg = ingest_config(Settings())
    assert cfg.buffer_bytes == 8 * 1024 * 1024
    limits = cfg.limits
    assert limits.max_message_bytes == 100_000
    assert limits.max_future == timedelta(seconds=120)
    assert limits.max_age == timedelta(days=30)
    assert limits.applications == frozenset({"gully-net", "care-home"})
    for name in ("LORAWATCH_INGEST_MAX_AGE_DAYS", "LORAWATCH_INGEST_APPLICATIONS", "LORAWATCH_INGEST_BUFFER_BYTES"):
        monkeypatch.delenv(name)
    defaults = ingest_config(Settings())
    assert defaults.limits.max_age is None and defaults.limits.applications is None
    assert defaults.buffer_bytes == 64 * 1024 * 1024
