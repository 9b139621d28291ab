"""The hand-over between paho's thread and the batching loop: order, count and byte capacity, wake-ups."""

from __future__ import annotations

import threading
import time

from ingest.inbox import BACKFILL, Inbox


def test_take_returns_oldest_first_up_to_the_limit_with_their_size() -> None:
    inbox: Inbox[int] = Inbox(10)
    for i in range(5):
        inbox.put(i, 10 + i)
    assert inbox.take(3) == ([0, 1, 2], 33)
    assert inbox.take(10) == ([3, 4], 27)
    assert inbox.take(10) == ([], 0)
    assert len(inbox) == 0


def test_full_at_capacity_and_put_still_appends() -> None:
    inbox: Inbox[int] = Inbox(2)
    inbox.put(1, 1)
    assert not inbox.full()
    inbox.put(2, 1)
    assert inbox.full()
    inbox.put(3, 1)  # the caller decides what full means; put itself never loses an item
    assert inbox.take(5)[0] == [1, 2, 3]


def test_full_by_bytes_before_the_count_is_reached() -> None:
    """A count alone does not bound memory: 50,000 messages of 1 MB are 50 GB."""
    inbox: Inbox[str] = Inbox(1000, capacity_bytes=1_000)
    inbox.put("a", 600)
    assert not inbox.full()
    inbox.put("b", 600)
    assert inbox.full() and len(inbox) == 2
    assert inbox.nbytes == 1200


def test_taken_items_hold_their_room_until_released() -> None:
    """A batch waiting for the database is still in memory: taking it must not make room."""
    inbox: Inbox[str] = Inbox(2, capacity_bytes=1_000)
    inbox.put("a", 600)
    inbox.put("b", 100)
    items, nbytes = inbox.take(1)
    assert (items, nbytes) == (["a"], 600)
    assert len(inbox) == 1 and inbox.in_flight == 1
    assert inbox.full()  # one queued + one in flight = the count capacity
    assert inbox.nbytes == 700
    inbox.release(1, 600)
    assert not inbox.full() and inbox.in_flight == 0 and inbox.nbytes == 100


def test_below_needs_both_bounds_under_the_fraction() -> None:
    inbox: Inbox[int] = Inbox(10, capacity_bytes=100)
    for i in range(4):
        inbox.put(i, 10)
    assert inbox.below(0.5)  # 4 of 10, 40 of 100
    inbox.put(9, 5)
    assert not inbox.below(0.5)  # 5 of 10 is not below half (45 of 100 bytes is)
    _, nbytes = inbox.take(1)
    assert not inbox.below(0.5)  # taken is still held
    inbox.release(1, nbytes)
    assert inbox.below(0.5)
    inbox.put(8, 50)
    assert not inbox.below(0.5)  # 5 of 10, and 85 of 100 bytes


def test_take_stops_at_the_byte_bound_but_always_takes_one() -> None:
    inbox: Inbox[int] = Inbox(100)
    for i, size in enumerate([400, 400, 400, 5000, 10]):
        inbox.put(i, size)
    assert inbox.take(10, max_bytes=1000) == ([0, 1], 800)
    assert inbox.take(10, max_bytes=1000) == ([2], 400)
    assert inbox.take(10, max_bytes=1000) == ([3], 5000)  # one item over the bound still moves
    assert inbox.take(10, max_bytes=1000) == ([4], 10)


def test_two_producer_threads_never_lose_a_byte_of_the_count() -> None:
    """Each lane's counter has one writer: a racing `total += n` from two threads would lose updates."""
    inbox: Inbox[int] = Inbox(10**9)
    n = 100_000

    def produce(lane: int) -> None:
        for i in range(n):
            inbox.put(i, 3, lane)

    threads = [threading.Thread(target=produce, args=(lane,)) for lane in (0, BACKFILL)]
    for t in threads:
        t.start()
    taken = 0
    while any(t.is_alive() for t in threads) or len(inbox):
        items, nbytes = inbox.take(1000)
        inbox.release(len(items), nbytes)
        taken += len(items)
    for t in threads:
        t.join()
    assert taken == 2 * n
    assert inbox.nbytes == 0


def test_wait_times_out_when_empty_and_returns_at_once_when_not() -> None:
    inbox: Inbox[str] = Inbox(1)
    started = time.monotonic()
    assert inbox.wait(0.05) is False
    assert time.monotonic() - started >= 0.04
    assert inbox.wait(0) is False
    inbox.put("x", 1)
    assert inbox.wait(10) is True


def test_a_put_from_another_thread_wakes_a_waiting_consumer() -> None:
    inbox: Inbox[int] = Inbox(100)
    for round_ in range(200):  # many rounds, to catch a put that slips between the look and the sleep
        threading.Timer(0.0005 * (round_ % 3), inbox.put, args=(round_, 1)).start()
        assert inbox.wait(5), f"round {round_}: the put did not wake the consumer"
        assert inbox.take(1)[0] == [round_]


def test_there_is_no_blocking_put() -> None:
    """paho's thread must never wait for room (a blocked network thread misses keepalives and the
    broker drops the client): the inbox offers no way to wait, only `full` and `below` to decide."""
    assert not hasattr(Inbox, "put_blocking")
