"""Scenario runs shared by the simulator tests (built once per session: they are pure and seeded)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from simulators import scenarios
from simulators.model import Join, Label, Record, Uplink
from simulators.run import DEFAULT_START, RunConfig


@dataclass
class Run:
    records: list[Record]
    labels: list[Label]

    def uplinks(self, device_id: str | None = None) -> list[Uplink]:
        return [
            r for r in self.records if isinstance(r, Uplink) and (device_id is None or r.device.device_id == device_id)
        ]

    def joins(self) -> list[Join]:
        return [r for r in self.records if isinstance(r, Join)]

    def labelled(self, kind: str) -> list[Label]:
        return [label for label in self.labels if label.label == kind]

    def other_labels(self, label: Label) -> list[Label]:
        """Labels on the same device that overlap `label` in time (they can mask what it shows)."""
        return [
            o
            for o in self.labels
            if o is not label
            and o.device_id == label.device_id
            and o.start <= label.end
            and label.start <= o.end
            and o.label != "rejoin"
        ]


def run(name: str, fleet: int, days: float, seed: int = 7) -> Run:
    sim = scenarios.get(name).build(RunConfig(fleet=fleet, seed=seed, start=DEFAULT_START, duration=days * 86400))
    records = list(sim.records())
    return Run(records, sim.sorted_labels())


@pytest.fixture(scope="session")
def storms() -> Run:
    return run("gully-storms", 30, 4)


@pytest.fixture(scope="session")
def blockage() -> Run:
    return run("gully-blockage", 30, 5)


@pytest.fixture(scope="session")
def silt() -> Run:
    return run("gully-silt", 20, 21)


@pytest.fixture(scope="session")
def faults() -> Run:
    return run("gully-faults", 40, 7)


@pytest.fixture(scope="session")
def outage() -> Run:
    return run("gateway-outage", 60, 3)


@pytest.fixture(scope="session")
def battery() -> Run:
    return run("battery-decay", 30, 7)


@pytest.fixture(scope="session")
def mixed() -> Run:
    return run("gully-mixed", 40, 7)


@pytest.fixture(scope="session")
def care() -> Run:
    return run("care-mixed", 6, 7)


@pytest.fixture(scope="session")
def care_falls() -> Run:
    return run("care-falls", 4, 7)


@pytest.fixture(scope="session")
def care_inactivity() -> Run:
    return run("care-inactivity", 4, 7)


@pytest.fixture(scope="session")
def care_wandering() -> Run:
    return run("care-wandering", 4, 7)
