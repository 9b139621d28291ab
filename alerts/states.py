"""Where the engine keeps its rule states between passes: in the database (live), or in memory in front
of it (replay).

A stored state is either its JSON form (as read from `rule_state`) or the evaluator's state object
itself; the engine parses the first and takes the second as it is (states are frozen dataclasses, so
keeping one costs nothing and no pass can change another's).

Live, every pass reads its states FOR UPDATE and writes them back in its own transaction, so two
workers take turns on a subject and a worker killed at any point loses nothing. Replay (`lorawatch
score`) has one engine alone on a scratch database and no restart to survive: it keeps the state
objects in memory, which spares a read, a parse, a serialisation and a write per rule and reading
(three quarters of a replay's time went there), and writes them all to the database at the end, so a
scored database holds what a live one would.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import psycopg

from alerts.evaluators.offline import OfflineState
from store import alerts as db

Key = tuple[str, str]
#: (rule, subject) -> (state, due_at): the state as JSON or as its object; due_at is when the clock next
#: has something to decide for it (None: only new data can change it).
Saved = Mapping[Key, tuple[Any, datetime | None]]


def _json(state: Any) -> dict[str, Any]:
    return state if isinstance(state, dict) else state.to_json()


class DatabaseStates:
    """The live store: `rule_state`, in the caller's transaction."""

    def load(self, conn: psycopg.Connection, keys: Iterable[Key]) -> Mapping[Key, Any]:
        """The stored states of those of `keys` that have one (it may hold others too)."""
        return db.load_states(conn, keys)

    def save(self, conn: psycopg.Connection, states: Saved) -> None:
        db.save_states(conn, {key: (_json(state), due) for key, (state, due) in states.items()})

    def due(self, conn: psycopg.Connection, now: datetime) -> dict[Key, Any]:
        return db.due_states(conn, now)

    def next_due(self, conn: psycopg.Connection) -> datetime | None:
        """In a transaction of its own, so an idle connection is left idle (not inside an implicit one)."""
        with conn.transaction():
            return db.next_due(conn)

    def upcoming(self, conn: psycopg.Connection, limit: int) -> list[datetime]:
        """The earliest `limit` distinct due times, soonest first."""
        with conn.transaction():
            return db.upcoming_due(conn, limit)

    def release_inhibited(self, conn: psycopg.Connection, gateway_id: str, at: datetime) -> None:
        db.release_inhibited(conn, gateway_id, at)

    def flush(self, conn: psycopg.Connection) -> None:
        """Nothing is held back: every pass has written its states."""


class MemoryStates(DatabaseStates):
    """Replay's store: the states of a single engine, kept in memory from the first pass (which reads
    whatever the database already holds) and written to the database by `flush`. Only for an engine
    that is alone on its database: another writer's states would be overwritten, and a crash before
    `flush` loses the states (a replay is simply run again)."""

    def __init__(self) -> None:
        self._states: dict[Key, Any] | None = None
        self._due: dict[Key, datetime] = {}
        self._dirty: set[Key] = set()
        # The distinct due times, soonest first: how many states are due at each, and a heap of them in
        # which a time no state is due at any more is left until it reaches the top. Replay asks for the
        # next due times after every pass, and a pass moves a few hundred of the thousands held: a scan
        # of them all for each answer cost more than the pass's own saves.
        self._count: dict[datetime, int] = {}
        self._heap: list[datetime] = []

    def _all(self, conn: psycopg.Connection) -> dict[Key, Any]:
        if self._states is None:
            rows = conn.execute("SELECT rule, subject, state, due_at FROM rule_state").fetchall()
            self._states = {(rule, subject): state for rule, subject, state, _ in rows}
            for rule, subject, _, due in rows:
                if due is not None:
                    self._move((rule, subject), due)
        return self._states

    def _move(self, key: Key, due: datetime | None) -> None:
        """Set (or, None, clear) the due time of `key`."""
        old = self._due.get(key)
        if old == due:
            return
        count = self._count
        if old is not None:
            left = count[old] - 1
            if left:
                count[old] = left
            else:
                del count[old]
        if due is None:
            del self._due[key]
            return
        self._due[key] = due
        if due in count:
            count[due] += 1
        else:
            count[due] = 1
            heapq.heappush(self._heap, due)
            if len(self._heap) > 2 * len(count) + 1024:  # mostly times no longer due: rebuilt
                self._heap = list(count)
                heapq.heapify(self._heap)

    def load(self, conn: psycopg.Connection, keys: Iterable[Key]) -> Mapping[Key, Any]:
        """Every state held, as a read-only view (which has those of `keys` that exist: a pass asks
        for a few thousand, and copying them out cost more than the look-ups)."""
        return MappingProxyType(self._all(conn))

    def save(self, conn: psycopg.Connection, states: Saved) -> None:
        held, due_at, move = self._all(conn), self._due, self._move
        for key, (state, due) in states.items():
            held[key] = state
            if due_at.get(key) != due:
                move(key, due)
        self._dirty.update(states)

    def due(self, conn: psycopg.Connection, now: datetime) -> dict[Key, Any]:
        held = self._all(conn)
        return {key: held[key] for key in sorted(k for k, at in self._due.items() if at <= now)}

    def next_due(self, conn: psycopg.Connection) -> datetime | None:
        if self._states is None:
            with conn.transaction():
                self._all(conn)
        heap, count = self._heap, self._count
        while heap and heap[0] not in count:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def upcoming(self, conn: psycopg.Connection, limit: int) -> list[datetime]:
        self.next_due(conn)  # loads the states once
        heap, count = self._heap, self._count
        soonest: list[datetime] = []
        while heap and len(soonest) < limit:
            at = heapq.heappop(heap)
            if at in count and (not soonest or soonest[-1] != at):  # a time still due, not seen yet
                soonest.append(at)
        for at in soonest:
            heapq.heappush(heap, at)
        return soonest

    def release_inhibited(self, conn: psycopg.Connection, gateway_id: str, at: datetime) -> None:
        for key, state in self._all(conn).items():
            held = state.inhibited_by if isinstance(state, OfflineState) else (
                state.get("inhibited_by") if isinstance(state, dict) else None
            )  # fmt: skip
            if held == gateway_id and key[1].startswith("device:"):
                self._move(key, at)
                self._dirty.add(key)

    def flush(self, conn: psycopg.Connection, chunk: int = 5000) -> None:
        """Write every state changed since the last flush to `rule_state`."""
        held = self._all(conn)
        dirty = sorted(self._dirty)
        for start in range(0, len(dirty), chunk):
            keys = dirty[start : start + chunk]
            db.save_states(conn, {key: (_json(held[key]), self._due.get(key)) for key in keys})
        self._dirty.clear()


__all__ = ["DatabaseStates", "MemoryStates"]
