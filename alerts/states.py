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

    def _all(self, conn: psycopg.Connection) -> dict[Key, Any]:
        if self._states is None:
            rows = conn.execute("SELECT rule, subject, state, due_at FROM rule_state").fetchall()
            self._states = {(rule, subject): state for rule, subject, state, _ in rows}
            self._due = {(rule, subject): due for rule, subject, _, due in rows if due is not None}
        return self._states

    def load(self, conn: psycopg.Connection, keys: Iterable[Key]) -> Mapping[Key, Any]:
        """Every state held, as a read-only view (which has those of `keys` that exist: a pass asks
        for a few thousand, and copying them out cost more than the look-ups)."""
        return MappingProxyType(self._all(conn))

    def save(self, conn: psycopg.Connection, states: Saved) -> None:
        held, due_at = self._all(conn), self._due
        for key, (state, due) in states.items():
            held[key] = state
            if due is None:
                due_at.pop(key, None)
            else:
                due_at[key] = due
        self._dirty.update(states)

    def due(self, conn: psycopg.Connection, now: datetime) -> dict[Key, Any]:
        held = self._all(conn)
        return {key: held[key] for key in sorted(k for k, at in self._due.items() if at <= now)}

    def next_due(self, conn: psycopg.Connection) -> datetime | None:
        if self._states is None:
            with conn.transaction():
                self._all(conn)
        return min(self._due.values(), default=None)

    def upcoming(self, conn: psycopg.Connection, limit: int) -> list[datetime]:
        self.next_due(conn)  # loads the states once
        return heapq.nsmallest(limit, set(self._due.values()))

    def release_inhibited(self, conn: psycopg.Connection, gateway_id: str, at: datetime) -> None:
        for key, state in self._all(conn).items():
            held = state.inhibited_by if isinstance(state, OfflineState) else (
                state.get("inhibited_by") if isinstance(state, dict) else None
            )  # fmt: skip
            if held == gateway_id and key[1].startswith("device:"):
                self._due[key] = at
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
