"""End to end through a real Mosquitto and TimescaleDB: uplinks in, rows out, nothing lost or doubled."""

from __future__ import annotations

import json

import psycopg

from tests.integration.ingest.conftest import Publisher, running_ingester, scalar, wait_until
from tests.lns import T0, example, raw, topic_for, tts_uplink


def test_tts_uplinks_are_stored_decoded_and_deduplicated(db_url, mosquitto, publisher: Publisher) -> None:
    with running_ingester(db_url, mosquitto.port, ("v3/+/devices/+/up",)) as ing:
        bodies = [tts_uplink("gully-017", f_cnt=n) for n in range(1, 21)]
        publisher.publish_many([(topic_for(b), raw(b)) for b in bodies])
        publisher.publish_many([(topic_for(b), raw(b)) for b in bodies[:5]])  # redelivered
        wait_until(lambda: ing.totals.stored + ing.totals.duplicates == 25, what="25 messages handled")
    assert scalar(db_url, "SELECT count(*) FROM uplinks") == 20
    assert scalar(db_url, "SELECT count(*) FROM readings WHERE distance_mm = 2799") == 20
    assert scalar(db_url, "SELECT value FROM counters WHERE name = 'duplicates'") == 5
    assert ing.totals.duplicates == 5
    # The device registered itself, unassigned, with what its uplinks said.
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT kind, brand_id, model_id, dev_eui, first_seen < last_seen FROM devices").fetchone()
    assert row == ("unassigned", "dragino", "ldds75", "A84041000181C2F7", True)
    gw = scalar(db_url, "SELECT uplinks FROM gateways WHERE gateway_id = 'depot-roof-gw'")
    assert gw == 20


def test_bad_messages_are_dead_lettered_by_stage_and_good_ones_still_land(
    db_url, mosquitto, publisher: Publisher
) -> None:
    topic = "v3/gully-net@ttn/devices/gully-017/up"
    bad = [b"{not json", b'{"hello": 1}', raw(tts_uplink(payload=b"\x01\x02", f_cnt=2))]
    good = raw(tts_uplink(f_cnt=3))
    with running_ingester(db_url, mosquitto.port, ("v3/+/devices/+/up",)) as ing:
        publisher.publish_many([(topic, b) for b in [*bad, good]])
        wait_until(lambda: ing.totals.stored + ing.totals.dead_lettered == 4, what="4 handled")
    with psycopg.connect(db_url) as conn:
        stages: dict[str, int] = dict(
            conn.execute("SELECT stage, count(*) FROM dead_letters GROUP BY stage").fetchall()
        )
        raws = {bytes(r[0]) for r in conn.execute("SELECT raw FROM dead_letters")}
    assert stages == {"json": 1, "envelope": 1, "decode": 1}
    assert raws == set(bad)  # the exact bytes are kept
    assert scalar(db_url, "SELECT count(*) FROM uplinks") == 1


def test_range_rejects_are_dead_lettered_but_the_uplink_is_stored(db_url, mosquitto, publisher: Publisher) -> None:
    body = tts_uplink(payload=bytes.fromhex("3FFF0AEF00000001"))
    with running_ingester(db_url, mosquitto.port, ("v3/+/devices/+/up",)) as ing:
        publisher.publish(topic_for(body), raw(body))
        publisher.publish(topic_for(body), raw(body))  # the duplicate must not add a second dead letter
        wait_until(lambda: ing.totals.stored + ing.totals.duplicates == 2, what="2 handled")
    assert scalar(db_url, "SELECT count(*) FROM dead_letters WHERE stage = 'range'") == 1
    assert scalar(db_url, "SELECT distance_mm FROM readings") == 2799
    assert scalar(db_url, "SELECT battery_v FROM readings") is None


def test_chirpstack_and_tts_on_one_ingester(db_url, mosquitto, publisher: Publisher) -> None:
    cs = example("chirpstack_7_4_up")
    cs_topic = "application/5f0c6a1e-2b7d-4c3a-9e41-7d2b8c0f9a13/device/a84041000181c2f7/event/up"
    tts = tts_uplink(f_cnt=4_294_967_295, time=T0)  # the helper would date this f_cnt in the future
    with running_ingester(db_url, mosquitto.port, ("v3/+/devices/+/up", "application/+/device/+/event/+")) as ing:
        publisher.publish(cs_topic, raw(cs))
        publisher.publish(cs_topic.replace("/up", "/status"), json.dumps({**cs, "margin": 7}).encode())
        publisher.publish(topic_for(tts), raw(tts))
        wait_until(lambda: ing.totals.stored == 2 and ing.totals.skipped == 1, what="2 stored, 1 skipped")
    with psycopg.connect(db_url) as conn:
        rows: dict[str, int] = dict(conn.execute("SELECT source, f_cnt FROM uplinks").fetchall())
    assert rows == {"chirpstack": 0, "tts": 4_294_967_295}


def test_status_json_after_ingest(db_url, mosquitto, publisher: Publisher, monkeypatch, capsys) -> None:
    from lorawatch.cli import main

    with running_ingester(db_url, mosquitto.port, ("v3/+/devices/+/up",)) as ing:
        body = tts_uplink(f_cnt=9)
        publisher.publish(topic_for(body), raw(body))
        publisher.publish(topic_for(body), raw(body))
        publisher.publish(topic_for(body), b"garbage")
        wait_until(lambda: ing.totals.stored + ing.totals.duplicates + ing.totals.dead_lettered == 3)
    monkeypatch.setenv("LORAWATCH_DATABASE_URL", db_url)
    assert main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["devices"], data["uplinks"], data["readings"], data["duplicates"]) == (1, 1, 1, 1)
    assert data["dead_letters"] == {"json": 1}


def test_prometheus_metrics_count_what_happened(db_url, mosquitto, publisher: Publisher) -> None:
    from prometheus_client import generate_latest

    body = tts_uplink(f_cnt=11)
    with running_ingester(db_url, mosquitto.port, ("v3/+/devices/+/up",)) as ing:
        publisher.publish(topic_for(body), raw(body))
        publisher.publish(topic_for(body), raw(body))
        publisher.publish(topic_for(body), b"{oops")
        wait_until(lambda: ing.totals.stored + ing.totals.duplicates + ing.totals.dead_lettered == 3)
        reg = ing.metrics.registry
        assert reg.get_sample_value("lorawatch_ingest_mqtt_connected") == 1
        assert reg.get_sample_value("lorawatch_ingest_db_connected") == 1
    assert reg.get_sample_value("lorawatch_ingest_received_total") == 3
    assert reg.get_sample_value("lorawatch_ingest_stored_total") == 1
    assert reg.get_sample_value("lorawatch_ingest_duplicates_total") == 1
    assert reg.get_sample_value("lorawatch_ingest_dead_letters_total", {"stage": "json"}) == 1
    assert (reg.get_sample_value("lorawatch_ingest_batch_seconds_count") or 0) >= 1
    assert b"lorawatch_ingest_queue_depth" in generate_latest(reg)


def test_ingest_over_tls(db_url, tmp_path) -> None:
    """mqtts:// with a private CA: the ingester verifies the broker's certificate and stores uplinks."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from ingest.service import IngestConfig, Ingester, MqttConfig
    from lorawatch.services import Mosquitto
    from lorawatch.settings import parse_mqtt_url

    broker = Mosquitto(tmp_path / "tls-mq", tls=True).start()
    try:
        target = parse_mqtt_url(broker.url)
        assert target.tls and target.port == broker.port
        cfg = IngestConfig(
            database_url=db_url,
            mqtt=MqttConfig(
                target.host,
                target.port,
                tls=True,
                ca_file=broker.ca_file,
                client_id="tls-ingest",
                topics=("v3/+/devices/+/up",),
            ),
            batch_ms=20,
        )
        ing = Ingester(cfg)
        import threading

        stop = threading.Event()
        thread = threading.Thread(target=ing.run, args=(stop,), daemon=True)
        thread.start()
        assert ing.ready.wait(20)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls-pub")
        pub.tls_set(ca_certs=str(broker.ca_file))
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        body = tts_uplink(f_cnt=77)
        pub.publish(topic_for(body), raw(body), qos=1).wait_for_publish(10)
        pub.disconnect()
        pub.loop_stop()
        wait_until(lambda: ing.totals.stored == 1, what="uplink stored over TLS")
        stop.set()
        thread.join(15)
    finally:
        broker.stop()
    assert scalar(db_url, "SELECT f_cnt FROM uplinks") == 77
