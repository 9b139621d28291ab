"""The bounded hand-over from paho's network thread to the batching loop.

Why not `queue.Queue`: it takes a lock and notifies a condition on every put and every get, which was
about a fifth of paho's thread at 10,000 messages/s, and paho's thread is the one that must keep up
(TTS drops messages for slow consumers). Here a put is one `deque.append` (atomic under the GIL), and
the Event is set only when the consumer has said it is about to sleep, so a busy stream never touches
a lock. One producer thread at a time (paho's, or the backfill's through `put_blocking`) and one
consumer.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

#: How often a producer that waits for room looks again (seconds).
_ROOM_POLL_S = 0.005


class Inbox(Generic[T]):
    """A deque with a capacity, a cheap `put`, and a `wait` for the consumer."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._nonempty = threading.Event()
        self._sleeping = False

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return len(self._items) >= self.capacity

    def put(self, item: T) -> None:
        """Append even when full: the caller decides what full means (wait, or drop and count)."""
        self._items.append(item)
        if self._sleeping:
            self._nonempty.set()

    def put_blocking(self, item: T, stop: threading.Event) -> bool:
        """Wait for room, then put; False (and nothing put) if `stop` is set first."""
        while self.full():
            if stop.wait(_ROOM_POLL_S):
                return False
        self.put(item)
        return True

    def take(self, limit: int) -> list[T]:
        """Up to `limit` items, oldest first, without waiting."""
        items = self._items
        return [items.popleft() for _ in range(min(limit, len(items)))]

    def wait(self, timeout: float) -> bool:
        """Until something is queued (True) or `timeout` passes (False).

        The order matters: clear, announce, look again, sleep. A put that misses the announcement is
        seen by the second look; a put after it sets the event."""
        if self._items:
            return True
        if timeout <= 0:
            return False
        self._nonempty.clear()
        self._sleeping = True
        try:
            return bool(self._items) or self._nonempty.wait(timeout)
        finally:
            self._sleeping = False
