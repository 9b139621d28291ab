"""The ingest writer against a real TimescaleDB: natural keys, isolation of refused rows, bounds,
device identity per application, idempotent dead letters, watermarks and the status accounting."""

from __future__ import annotations

import random
import string
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from store import queries, status
from store.records import READING_INDEX
from store.writer import IngestWriter, Outage, is_outage
from tests.integration.store.records_factory import T0, dead, record, replace


@pytest.fixture
def writer(db_url: str):
    conn = psycopg.connect(db_url)
    yield IngestWriter(conn)
    conn.close()


def scalar(db: str, query: str, *args):
    with psycopg.connect(db) as conn:
        row = conn.execute(query, args).fetchone()
    return row[0] if row else None


def test_natural_key_is_unique_whatever_the_time(writer: IngestWriter, db_url: str) -> None:
    first = [record("gully-1", n) for n in range(100)]
    again = [
        record("gully-1", n, time=r.uplink.time + timedelta(milliseconds=150)) for n, r in enumerate(first)
    ]  # a second path / backfill: same key, another timestamp
    assert writer.write(first).stored == 100
    result = writer.write(again)
    assert (result.stored, result.duplicates) == (0, 100)
    assert scalar(db_url, "SELECT count(*) FROM uplinks") == 100
    assert scalar(db_url, "SELECT count(*) FROM readings") == 100
    assert status.counts(db_url)["duplicates"] == 100


def test_duplicates_inside_one_batch_count_once(writer: IngestWriter, db_url: str) -> None:
    r = record("gully-1", 7)
    result = writer.write([r, replace(r), record("gully-1", 7, time=r.uplink.time + timedelta(seconds=1))])
    assert (result.stored, result.duplicates) == (1, 2)


def _noise(n: int) -> str:
    """Random text does not compress, so it really exceeds the btree row limit (repeated text would not)."""
    return "".join(random.Random(n).choices(string.ascii_letters + string.digits, k=n))


@pytest.mark.parametrize(
    ("change", "column"),
    [
        ({"device_id": _noise(5000)}, None),  # btree row limit: must not look like an outage
        ({"uplink_key": _noise(5001)}, None),
        ({"device_id": "nul\x00here"}, None),
        ({"spreading_factor": 65543}, "spreading_factor"),  # would wrap to 7 in binary COPY
        ({"bandwidth_hz": 2**40 + 125000}, "bandwidth_hz"),
        ({"f_cnt": 2**63}, "f_cnt"),
        ({"frequency_hz": 10**20}, "frequency_hz"),
        ({"rssi_dbm": 1e308}, "rssi_dbm"),  # would become inf in a real column
        ({"rx_metadata": '{"a": "\\u0000"}'}, None),  # jsonb refuses NUL
    ],
)
def test_a_refused_row_is_isolated_and_named(
    writer: IngestWriter, db_url: str, change: dict[str, Any], column: str | None
):
    batch = [record("gully-1", n) for n in range(1, 201)]
    bad = batch[57]
    batch[57] = replace(bad, uplink=bad.uplink._replace(**change))
    result = writer.write(batch)
    assert result.stored == 199
    assert result.dead_lettered == 1
    (reject,) = result.store_rejects
    assert reject.stage == "store"
    assert reject.raw == bad.raw
    if column:
        assert reject.field == column
        assert column in reject.reason
    assert scalar(db_url, "SELECT count(*) FROM uplinks") == 199
    assert scalar(db_url, "SELECT count(*) FROM dead_letters WHERE stage = 'store'") == 1
    assert scalar(db_url, "SELECT max(spreading_factor) FROM uplinks") == 7


def test_a_reading_value_that_would_wrap_is_refused(writer: IngestWriter) -> None:
    r = record("gully-1", 1)
    r.readings[0].values[READING_INDEX["illuminance"]] = 40000  # smallint: would be stored as -25536
    result = writer.write([r, record("gully-1", 2)])
    assert result.stored == 1
    assert result.store_rejects[0].field == "illuminance"


def test_ten_bad_rows_in_twenty_thousand_stay_fast(writer: IngestWriter, db_url: str) -> None:
    batch = [record(f"gully-{n % 500}", n, readings=1, gateway=None) for n in range(20_000)]
    for i in range(5, 20_000, 2000):
        batch[i] = replace(batch[i], uplink=batch[i].uplink._replace(spreading_factor=70000))
    clean = [record(f"other-{n % 500}", n, readings=1, gateway=None) for n in range(20_000)]
    started = time.perf_counter()
    writer.write(clean)
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    result = writer.write(batch)
    isolated = time.perf_counter() - started
    assert (result.stored, result.dead_lettered) == (19_990, 10)
    # bisection: a few hundred small statements, not 20,000 transactions (was ~14x slower one by one)
    assert isolated < baseline * 6 + 2, (isolated, baseline)


def test_outage_classification(db_url: str) -> None:
    conn = psycopg.connect(db_url)
    with pytest.raises(psycopg.Error) as info:
        conn.execute("SELECT repeat('x', 3000000)::text::varchar(10)::int")
    assert not is_outage(info.value)
    conn.rollback()
    with pytest.raises(psycopg.errors.ProgramLimitExceeded) as limit:
        conn.execute("CREATE TEMP TABLE t (k text PRIMARY KEY)")
        conn.execute("INSERT INTO t SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i")
    assert not is_outage(limit.value)  # a ProgramLimitExceeded is an OperationalError, but about the data
    conn.rollback()
    writer = IngestWriter(conn)
    pid = conn.info.backend_pid
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(Outage):
        writer.write([record("gully-1", 1)])
    assert scalar(db_url, "SELECT count(*) FROM uplinks") == 0


def test_one_name_in_two_applications_is_two_devices(writer: IngestWriter, db_url: str) -> None:
    t = T0
    a = record("shared-1", 1, app="app-a", time=t)
    b = record("shared-1", 1, app="app-b", time=t, key="tts:shared-1:other-session:1")
    result = writer.write([a, b])
    assert result.stored == 2
    assert result.readings == 2 and result.reading_duplicates == 0
    with psycopg.connect(db_url) as conn:
        twins = queries.devices_named(conn, "shared-1")
        assert [d.application_id for d in twins] == ["app-a", "app-b"]
        assert all(d.shared_name for d in twins)
        one = queries.readings(conn, twins[0].id, t - timedelta(hours=1), t + timedelta(hours=1))
        assert [(r.application_id, r.distance_mm) for r in one] == [("app-a", 2001.0)]
    assert status.counts(db_url)["devices_sharing_a_name"] == 1


def test_registry_entry_without_application_adopts_the_first_one(writer: IngestWriter, db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO devices (device_id, kind, name) VALUES ('gully-9', 'gully', 'Mill Lane')")
    writer.write([record("gully-9", 1, app="app-a")])
    with psycopg.connect(db_url) as conn:
        (device,) = queries.devices_named(conn, "gully-9")
    assert (device.application_id, device.kind, device.name) == ("app-a", "gully", "Mill Lane")


def test_two_uplinks_with_one_timestamp_count_the_reading_duplicate(writer: IngestWriter, db_url: str) -> None:
    result = writer.write([record("gully-1", 1, time=T0), record("gully-1", 2, time=T0)])
    assert (result.stored, result.readings, result.reading_duplicates) == (2, 1, 1)
    assert status.counts(db_url)["reading_duplicates"] == 1


def test_a_reading_stored_by_an_earlier_batch_is_a_duplicate_and_the_rest_is_kept(
    writer: IngestWriter, db_url: str
) -> None:
    writer.write([record("gully-1", 1, time=T0)])
    result = writer.write([record("gully-1", 2, time=T0), record("gully-1", 3, time=T0 + timedelta(minutes=1))])
    assert (result.stored, result.readings, result.reading_duplicates) == (2, 1, 1)
    assert scalar(db_url, "SELECT count(*) FROM readings") == 2
    assert scalar(db_url, "SELECT cardinality(reading_devices) FROM changes ORDER BY id DESC LIMIT 1") == 1


def test_dead_letters_are_idempotent(writer: IngestWriter, db_url: str) -> None:
    bad = [dead(f"bad {n}".encode()) for n in range(200)]
    writer.write([], bad)
    writer.write([], bad)
    writer.write([], [dead(b"bad 1"), dead(b"bad 1")])
    assert scalar(db_url, "SELECT count(*) FROM dead_letters") == 200
    assert scalar(db_url, "SELECT repeats FROM dead_letters WHERE raw = 'bad 1'") == 4
    assert status.counts(db_url)["dead_letters"] == {"json": 402}


def test_dead_letter_text_is_always_writable(writer: IngestWriter, db_url: str) -> None:
    d = dead(b"\x00\xff", stage="envelope", topic="v3/a\x00b/devices/\udcff/up")
    d.device_id = "nul\x00dev"
    assert writer.write([], [d]).dead_lettered == 1
    assert scalar(db_url, "SELECT raw FROM dead_letters") == b"\x00\xff"


def test_simulated_uplinks_do_not_touch_device_state(writer: IngestWriter, db_url: str) -> None:
    writer.write([record("gully-1", 1, time=T0)])
    future = datetime(2030, 1, 1, tzinfo=UTC)
    sim = record("gully-1", 2, time=future, simulated=True, key="tts:gully-1:as:up:01SIM", readings=0)
    assert writer.write([sim]).stored == 1
    assert scalar(db_url, "SELECT last_seen FROM devices") == T0
    assert scalar(db_url, "SELECT last_seen FROM gateways") == T0


def test_watermarks_never_move_into_the_future(writer: IngestWriter, db_url: str) -> None:
    writer.write([record("gully-1", 1, time=datetime.now(UTC) + timedelta(minutes=5))])
    assert scalar(db_url, "SELECT last_seen <= now() FROM devices")
    assert scalar(db_url, "SELECT last_seen <= now() FROM gateways")


def test_status_accounting_balances(writer: IngestWriter, db_url: str) -> None:
    records = [record("gully-1", n) for n in range(50)]
    writer.write(records[:30], [dead(b"x1"), dead(b"x2", stage="envelope")], {"join": 3})
    writer.write(records, [], {"downlink_ack": 2})
    counts = status.counts(db_url)
    assert counts["messages"] == {"stored": 50, "duplicates": 30, "dead_lettered": 2, "skipped": 5, "total": 87}
    assert counts["skipped"] == {"downlink_ack": 2, "join": 3}
    assert counts["uplinks"] == 50 and counts["readings"] == 50


def test_a_known_device_moves_its_watermarks_and_keeps_its_row(writer: IngestWriter, db_url: str) -> None:
    writer.write([record("gully-1", 5)])
    ref = scalar(db_url, "SELECT id FROM devices")
    writer.write([record("gully-1", 9), record("gully-1", 2)])  # a newer and an older uplink
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT id, first_seen, last_seen FROM devices").fetchall()
    assert rows == [(ref, T0 + timedelta(minutes=30), T0 + timedelta(minutes=135))]


def test_a_device_row_deleted_by_hand_is_written_again(writer: IngestWriter, db_url: str) -> None:
    writer.write([record("gully-1", 1)])
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM readings")
        conn.execute("DELETE FROM devices")
    result = writer.write([record("gully-1", 2), record("gully-2", 1)])
    assert (result.stored, result.readings) == (2, 2)
    with psycopg.connect(db_url) as conn:
        refs = conn.execute(
            "SELECT r.device_ref = d.id FROM readings r JOIN devices d ON d.id = r.device_ref"
        ).fetchall()
    assert refs == [(True,), (True,)]


def test_simulated_readings_are_kept_apart_for_the_alert_rules(writer: IngestWriter, db_url: str) -> None:
    writer.write([record("gully-1", 1, time=T0)])  # registers the device
    sim = record("gully-1", 2, time=T0 + timedelta(minutes=1), simulated=True, key="tts:gully-1:as:up:01SIM2")
    unknown = record("gully-9", 1, time=T0, simulated=True, key="tts:gully-9:as:up:01SIM3")
    result = writer.write([sim, unknown])
    assert result.stored == 2 and result.simulated_keys == ["tts:gully-1:as:up:01SIM2"]
    assert scalar(db_url, "SELECT count(*) FROM readings") == 1  # only the real one
    assert scalar(db_url, "SELECT uplink_key FROM simulated_readings") == "tts:gully-1:as:up:01SIM2"
    assert scalar(db_url, "SELECT simulated_uplinks FROM changes ORDER BY id DESC LIMIT 1") == [
        "tts:gully-1:as:up:01SIM2"
    ]
