"""The bounded hand-over from paho's network thread to the batching loop.

Why not `queue.Queue`: it takes a lock and notifies a condition on every put and every get, which was
about a fifth of paho's thread at 10,000 messages/s, and paho's thread is the one that must keep up
(TTS drops messages for slow consumers). Here a put is one `deque.append` (atomic under the GIL), and
the Event is set only when the consumer has said it is about to sleep, so a busy stream never touches
a lock.

Why a byte bound as well as a count: a count alone does not bound memory (50,000 messages of 1 MB
are 50 GB). Every item is put with its size, and the inbox is full at `capacity` items or
`capacity_bytes` bytes, whichever comes first.

Why taken items still count: a batch that has been taken but not yet committed (the database may be
down for an hour) is still in memory. So `take` moves items from *queued* to *in flight*, and only
`release`, once their batch is done, gives their room back: the capacities bound everything held.

Why the byte total is kept as per-lane "put" counters and one "taken" counter instead of one running
total: `total += n` is a read, an add and a write, and two threads doing it at once lose updates.
Each counter here has exactly one writing thread (lane 0: paho's thread; lane 1: the backfill; the
consumer owns the in-flight and released counters), so nothing is lost without taking a lock.

Nothing here ever waits for room: whoever puts decides what full means (paho's thread drops or defers,
the backfill polls `below` before it puts).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

#: Lanes: one producer thread each (see the module docstring).
LIVE, BACKFILL = 0, 1


class Inbox(Generic[T]):
    """A deque with a count and a byte capacity, a cheap `put`, and a `wait` for the consumer."""

    def __init__(self, capacity: int, capacity_bytes: int | None = None) -> None:
        self.capacity = capacity
        self.capacity_bytes = capacity_bytes if capacity_bytes is not None else 1 << 62
        self._items: deque[tuple[T, int]] = deque()
        self._put_bytes = [0, 0]  # per lane, each written by its producer thread only
        self._released_bytes = 0  # written by the consumer only
        self._in_flight = 0  # taken, not yet released (consumer only)
        self._nonempty = threading.Event()
        self._sleeping = False

    def __len__(self) -> int:
        """Items queued (not yet taken)."""
        return len(self._items)

    @property
    def in_flight(self) -> int:
        """Items taken and not yet released."""
        return self._in_flight

    @property
    def nbytes(self) -> int:
        """Bytes held now, queued or in flight (as given to `put`)."""
        return self._put_bytes[0] + self._put_bytes[1] - self._released_bytes

    def full(self) -> bool:
        """At or over either capacity (asked by paho's thread for every message: kept to one call)."""
        put = self._put_bytes
        return (
            len(self._items) + self._in_flight >= self.capacity
            or put[0] + put[1] - self._released_bytes >= self.capacity_bytes
        )

    def below(self, fraction: float) -> bool:
        """Under `fraction` of both capacities (e.g. 0.5: "there is room again")."""
        return (
            len(self._items) + self._in_flight < self.capacity * fraction
            and self.nbytes < self.capacity_bytes * fraction
        )

    def put(self, item: T, nbytes: int, lane: int = LIVE) -> None:
        """Append even when full: the caller decides what full means (drop, defer, or wait)."""
        self._items.append((item, nbytes))
        self._put_bytes[lane] += nbytes
        if self._sleeping:
            self._nonempty.set()

    def take(self, limit: int, max_bytes: int | None = None) -> tuple[list[T], int]:
        """Up to `limit` items (and, past the first, up to `max_bytes`), oldest first, without waiting,
        with their total size. They stay held until `release`d."""
        items = self._items
        n = min(limit, len(items))
        if max_bytes is None or self.nbytes <= max_bytes:  # the common case: no per-item look
            pairs = [items.popleft() for _ in range(n)]
            self._in_flight += n
            return [item for item, _ in pairs], sum(size for _, size in pairs)
        out: list[T] = []
        total = 0
        while n and items:
            if out and total + items[0][1] > max_bytes:
                break
            item, size = items.popleft()
            out.append(item)
            total += size
            n -= 1
        self._in_flight += len(out)
        return out, total

    def release(self, count: int, nbytes: int) -> None:
        """Give back the room of `count` taken items of `nbytes` (their batch is done)."""
        self._in_flight -= count
        self._released_bytes += nbytes

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
