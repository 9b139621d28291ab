"""A scenario run: per-device record streams merged in time order, plus the ground-truth labels.

Most labels are known from the plan before any data exists (a storm, an outage); a few are only pinned
down while the data is generated (which uplink carried a spike, when a device re-joined), so `labels`
is complete once `records()` has been consumed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from simulators.model import Device, Label, Placement, Record


def _time(record: Record) -> float:
    return record.time


@dataclass
class Simulation:
    """What `Scenario.build` returns. `streams` are per-device iterators already in time order;
    `placements` say where each device is and what it watches (the device registry's view of it)."""

    scenario: str
    start: float
    end: float
    devices: list[Device]
    streams: list[Iterator[Record]]
    labels: list[Label] = field(default_factory=list)
    expected_uplinks: int = 0  # an estimate, for progress bars
    placements: list[Placement] = field(default_factory=list)

    def records(self) -> Iterator[Record]:
        """Every uplink and join of the run, in time order (ties keep device order: deterministic)."""
        return heapq.merge(*self.streams, key=_time)

    def sorted_labels(self) -> list[Label]:
        return sorted(self.labels, key=lambda label: (label.start, label.device_id, label.label))


def write_labels(labels: Iterable[Label], out: TextIO) -> int:
    """Labels as JSON Lines; returns how many were written."""
    n = 0
    for label in labels:
        out.write(label.to_json() + "\n")
        n += 1
    return n
