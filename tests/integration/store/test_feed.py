"""The change feed against a real TimescaleDB: exact keys, commit order under two concurrent writers,
a durable cursor, late readings, and NOTIFY as a wake-up."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg
import pytest

from store.feed import ChangeFeed, Waker, newest_change
from store.writer import IngestWriter
from tests.integration.store.records_factory import T0, record


def test_a_change_holds_exactly_what_its_batch_inserted(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        writer = IngestWriter(conn)
        first = writer.write([record("gully-1", n, readings=2, event=True) for n in range(1, 4)])
        # a redelivery plus one new uplink: the change names only the new rows
        second = writer.write([record("gully-1", 3, readings=2), record("gully-1", 4, readings=1)])
        nothing = writer.write([record("gully-1", 4)])
        assert nothing.change_id is None  # nothing new: no change, no wake-up
        feed = ChangeFeed(conn, "test")
        changes = feed.read(0)
        assert [c.id for c in changes] == [first.change_id, second.change_id]
        assert (changes[0].uplinks, changes[0].readings, changes[0].events) == (3, 6, 3)
        assert (changes[1].uplinks, changes[1].readings, changes[1].events) == (1, 1, 0)
        readings = feed.readings(changes[1:])
        assert [(r.device_id, r.time, r.distance_mm) for r in readings] == [
            ("gully-1", T0 + timedelta(hours=1), 2004.0)
        ]
        events = feed.events(changes[:1])
        assert [e.event_key for e in events] == ["k1", "k2", "k3"]
        assert all(e.attrs == {"id": 1} for e in events)
        ref = readings[0].device_ref
        assert changes[1].seen == [(ref, T0 + timedelta(hours=1))]


def test_a_device_heard_through_different_gateways_has_a_sighting_per_gateway_set(db_url: str) -> None:
    """The offline rule learns which gateways carry a device, and when each last did: a batch that holds
    an uplink through gw-1 and a later one through gw-2 must not date gw-1's by gw-2's."""
    with psycopg.connect(db_url) as conn:
        batch = [record("gully-1", 1, gateway="gw-1"), record("gully-1", 2, gateway="gw-1"),
                 record("gully-1", 3, gateway="gw-2"), record("gully-2", 1, gateway=None)]  # fmt: skip
        IngestWriter(conn).write(batch)
        (change,) = ChangeFeed(conn, "test").read(0)
        refs: dict[str, int] = dict(conn.execute("SELECT device_id, id FROM devices").fetchall())
        one, two = refs["gully-1"], refs["gully-2"]
        assert sorted(zip(change.seen, change.seen_gateways, strict=True)) == sorted([
            ((one, T0 + timedelta(minutes=30)), ("gw-1",)),  # its newest uplink through gw-1
            ((one, T0 + timedelta(minutes=45)), ("gw-2",)),
            ((two, T0 + timedelta(minutes=15)), ()),  # heard, through no gateway the LNS named
        ])  # fmt: skip


def test_late_reading_is_in_the_feed(db_url: str) -> None:
    """A reading older than everything already stored (backfill) still reaches the consumer."""
    with psycopg.connect(db_url) as conn:
        writer = IngestWriter(conn)
        writer.write([record("gully-1", n) for n in range(100, 110)])
        feed = ChangeFeed(conn, "alerts")
        position = feed.read(0)[-1].id
        late = writer.write([record("gully-1", 5)])
        (change,) = feed.read(position)
        assert change.id == late.change_id
        assert [r.distance_mm for r in feed.readings([change])] == [2005.0]


def test_cursor_is_durable(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        writer = IngestWriter(conn)
        for n in range(5):
            writer.write([record("gully-1", n)])
        feed = ChangeFeed(conn, "alerts")
        assert feed.position() == 0
        changes = feed.read(feed.position(), limit=3)
        feed.advance(changes[-1].id)
        conn.commit()
    with psycopg.connect(db_url) as conn:  # a restarted consumer
        feed = ChangeFeed(conn, "alerts")
        rest = feed.read(feed.position())
        assert len(rest) == 2
        assert rest[0].id == changes[-1].id + 1
        feed.advance(1)  # a cursor never moves back
        assert feed.position() == changes[-1].id
        assert ChangeFeed(conn, "dashboard").position() == 0  # cursors are per consumer


@pytest.mark.slow
def test_two_concurrent_writers_never_let_a_consumer_skip(db_url: str) -> None:
    """Two workers commit interleaved batches (shared gateway rows make them wait on each other); a
    consumer reading by cursor all the while sees every reading exactly once."""
    batches, per_batch = 60, 25
    stop = threading.Event()
    seen: list[tuple[int, object]] = []
    errors: list[BaseException] = []

    def produce(worker: int) -> None:
        try:
            with psycopg.connect(db_url) as conn:
                writer = IngestWriter(conn)
                for b in range(batches):
                    base = b * per_batch
                    writer.write([record(f"w{worker}-d{n % 7}", base + n, readings=1) for n in range(per_batch)])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def consume() -> None:
        with psycopg.connect(db_url) as conn:
            feed = ChangeFeed(conn, "consumer")
            position = feed.position()
            while True:
                finished = stop.is_set()  # read before looking: a batch may commit after an empty read
                changes = feed.read(position, limit=7)
                if changes:
                    seen.extend((r.device_ref, r.time) for r in feed.readings(changes))
                    position = changes[-1].id
                    feed.advance(position)
                conn.commit()
                if not changes:
                    if finished:
                        return
                    time.sleep(0.002)

    consumer = threading.Thread(target=consume)
    producers = [threading.Thread(target=produce, args=(w,)) for w in range(2)]
    consumer.start()
    for p in producers:
        p.start()
    for p in producers:
        p.join(120)
    stop.set()
    consumer.join(60)
    assert not errors, errors
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT device_ref, time FROM readings").fetchall()
        ids = [r[0] for r in conn.execute("SELECT id FROM changes ORDER BY committed_at, id")]
    assert len(stored) == 2 * batches * per_batch
    assert len(seen) == len(set(seen)) == len(stored)
    assert set(seen) == set(stored)
    assert ids == sorted(ids)  # ids in commit order


def test_waker_wakes_on_commit(db_url: str) -> None:
    waker = Waker(db_url)
    try:
        assert waker.wait(0.05) is None
        with psycopg.connect(db_url) as conn:
            result = IngestWriter(conn).write([record("gully-1", 1)])
            assert newest_change(conn) == result.change_id
        assert waker.wait(5) == result.change_id
    finally:
        waker.close()
