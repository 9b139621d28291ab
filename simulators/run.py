"""Parameters every scenario takes: fleet size, seed, time span, packet loss."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from simulators.timefmt import from_datetime

#: Default simulated start: a fixed instant, so a seed alone reproduces a run.
DEFAULT_START = from_datetime(datetime(2025, 11, 3, tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class RunConfig:
    """`fleet` is the number of gullies (gully scenarios) or residents (care scenarios)."""

    fleet: int = 20
    seed: int = 1
    start: float = DEFAULT_START
    duration: float = 7 * 86400.0
    loss: float = 0.01

    @property
    def end(self) -> float:
        return self.start + self.duration

    def rng(self, *parts: object) -> random.Random:
        """An independent generator for one part of the run (a device, the weather), so adding a device
        does not change what the others do."""
        return random.Random(":".join([str(self.seed), *map(str, parts)]))
