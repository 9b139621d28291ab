"""The hand-over between paho's thread and the batching loop: order, capacity, wake-ups, stop."""

from __future__ import annotations

import threading
import time

from ingest.inbox import Inbox


def test_take_returns_oldest_first_up_to_the_limit() -> None:
    inbox: Inbox[int] = Inbox(10)
    for i in range(5):
        inbox.put(i)
    assert inbox.take(3) == [0, 1, 2]
    assert inbox.take(10) == [3, 4]
    assert inbox.take(10) == []
    assert len(inbox) == 0


def test_full_at_capacity_and_put_still_appends() -> None:
    inbox: Inbox[int] = Inbox(2)
    inbox.put(1)
    assert not inbox.full()
    inbox.put(2)
    assert inbox.full()
    inbox.put(3)  # the caller decides what full means; put itself never loses an item
    assert inbox.take(5) == [1, 2, 3]


def test_wait_times_out_when_empty_and_returns_at_once_when_not() -> None:
    inbox: Inbox[str] = Inbox(1)
    started = time.monotonic()
    assert inbox.wait(0.05) is False
    assert time.monotonic() - started >= 0.04
    assert inbox.wait(0) is False
    inbox.put("x")
    assert inbox.wait(10) is True


def test_a_put_from_another_thread_wakes_a_waiting_consumer() -> None:
    inbox: Inbox[int] = Inbox(100)
    for round_ in range(200):  # many rounds, to catch a put that slips between the look and the sleep
        threading.Timer(0.0005 * (round_ % 3), inbox.put, args=(round_,)).start()
        assert inbox.wait(5), f"round {round_}: the put did not wake the consumer"
        assert inbox.take(1) == [round_]


def test_put_blocking_waits_for_room_then_puts() -> None:
    inbox: Inbox[int] = Inbox(1)
    inbox.put(0)
    stop = threading.Event()
    done: list[bool] = []
    producer = threading.Thread(target=lambda: done.append(inbox.put_blocking(1, stop)))
    producer.start()
    time.sleep(0.05)
    assert not done, "put_blocking must wait while the inbox is full"
    assert inbox.take(1) == [0]
    producer.join(5)
    assert done == [True]
    assert inbox.take(1) == [1]


def test_put_blocking_gives_up_on_stop_without_putting() -> None:
    inbox: Inbox[int] = Inbox(1)
    inbox.put(0)
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    assert inbox.put_blocking(1, stop) is False
    assert inbox.take(5) == [0]
