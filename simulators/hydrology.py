"""Water in a gully pot: rain storms, drain time, blockage and silt, as a linear reservoir.

A gully pot holds standing water up to its outlet invert (the trap). Rain on the road catchment raises
the level above the invert; the outlet drains the excess with an e-folding `drain_time`, so a storm
gives a rise and an exponential recession. A blockage multiplies the drain time (slow recession); silt
creeps up from the invert and the sensor sees whichever surface is higher. With rain as piecewise
constant blocks the reservoir has a closed form per block, so the level at any time is exact and cheap.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

HOUR = 3600.0
DAY = 86400.0
BLOCK_S = 600.0  # rain is given in 10-minute blocks
#: A gully counts as back to normal once the excess over the invert is below this (mm).
RECOVERED_MM = 10.0


@dataclass(frozen=True, slots=True)
class GullyGeometry:
    """Where the sensor sits and how the pot behaves.

    distance = sensor_height_mm - surface level (both measured from the pot floor).
    """

    sensor_height_mm: float  # sensor face above the pot floor
    outlet_invert_mm: float  # outlet invert above the floor: the standing (trapped) water level
    drain_time_s: float  # e-folding time of the excess over the invert when the outlet is clear
    catchment: float  # level rise (mm/h) per mm/h of rain falling on the road catchment
    max_level_mm: float  # water at the grate: any more floods the road rather than the pot


@dataclass(frozen=True, slots=True)
class Storm:
    """A storm over the area: 10-minute rain blocks with a triangular profile peaking at `peak_mm_h`."""

    storm_id: int
    start: float
    end: float
    peak_mm_h: float
    intensities: tuple[float, ...]  # mm/h per block

    def rain(self, t: float) -> float:
        if t < self.start or t >= self.end:
            return 0.0
        return self.intensities[int((t - self.start) // BLOCK_S)]


def make_storm(rng: random.Random, storm_id: int, start: float, hours: float, peak_mm_h: float) -> Storm:
    """A storm of `hours` whose intensity rises to `peak_mm_h` a third of the way in, then eases off."""
    blocks = max(2, round(hours * HOUR / BLOCK_S))
    peak_at = max(1, blocks // 3)
    intensities = []
    for i in range(blocks):
        shape = (i + 0.5) / peak_at if i < peak_at else (blocks - i - 0.5) / (blocks - peak_at)
        intensities.append(round(peak_mm_h * max(0.05, min(1.0, shape)) * rng.uniform(0.8, 1.2), 2))
    start = BLOCK_S * math.floor(start / BLOCK_S)
    return Storm(storm_id, start, start + blocks * BLOCK_S, peak_mm_h, tuple(intensities))


@dataclass(frozen=True, slots=True)
class Window:
    """A time window with a factor (blockage multiplies the drain time by `factor`)."""

    start: float
    end: float
    factor: float = 1.0


class Pot:
    """One gully's water level over time. Query times must not go backwards (the state steps forward).

    `rain_factor` scales the area-wide rain for this gully (storm cells are patchy); `blockages` are
    windows that multiply the drain time; `silt` is (start, mm per day) or None.
    """

    def __init__(
        self,
        geometry: GullyGeometry,
        storms: Sequence[Storm],
        rain_factor: float,
        blockages: Sequence[Window] = (),
        silt: tuple[float, float] | None = None,
    ) -> None:
        self.geometry = geometry
        self.rain_factor = rain_factor
        self.blockages = tuple(blockages)
        self.silt = silt
        self._max_excess = geometry.max_level_mm - geometry.outlet_invert_mm
        # Breakpoints where rain or drain time change; the state is exact between them.
        edges: set[float] = set()
        self._blocks: list[tuple[float, float]] = []  # (start, mm/h) sorted
        for storm in storms:
            for i, value in enumerate(storm.intensities):
                self._blocks.append((storm.start + i * BLOCK_S, value * rain_factor))
            self._blocks.append((storm.end, 0.0))
        self._blocks.sort()
        edges.update(t for t, _ in self._blocks)
        for w in self.blockages:
            edges.update((w.start, w.end))
        self._edges = sorted(edges)
        self._block_starts = [t for t, _ in self._blocks]
        self._t = -math.inf
        self._excess = 0.0

    def drain_time(self, t: float) -> float:
        tau = self.geometry.drain_time_s
        for w in self.blockages:
            if w.start <= t < w.end:
                tau *= w.factor
        return tau

    def rain_at(self, t: float) -> float:
        i = bisect.bisect_right(self._block_starts, t) - 1
        return self._blocks[i][1] if i >= 0 else 0.0

    def _step(self, t0: float, t1: float) -> None:
        tau = self.drain_time(t0)
        inflow = self.geometry.catchment * self.rain_at(t0) / HOUR  # mm/s
        decay = math.exp(-(t1 - t0) / tau)
        self._excess = min(self._excess * decay + inflow * tau * (1.0 - decay), self._max_excess)

    def excess(self, t: float) -> float:
        """Water above the outlet invert at `t` (mm)."""
        if self._t == -math.inf:
            self._t = t
        if t < self._t:
            msg = "Pot.excess: time went backwards"
            raise ValueError(msg)
        i = bisect.bisect_right(self._edges, self._t)
        while i < len(self._edges) and self._edges[i] < t:
            self._step(self._t, self._edges[i])
            self._t = self._edges[i]
            i += 1
        if t > self._t:
            self._step(self._t, t)
            self._t = t
        return self._excess

    def silt_level(self, t: float) -> float:
        if self.silt is None or t < self.silt[0]:
            return 0.0
        return self.geometry.outlet_invert_mm + (t - self.silt[0]) / DAY * self.silt[1]

    def distance(self, t: float, excess: float | None = None) -> float:
        """Sensor to the highest surface under it, water or silt (`excess` if already known at `t`)."""
        water = self.geometry.outlet_invert_mm + (self.excess(t) if excess is None else excess)
        surface = min(max(water, self.silt_level(t)), self.geometry.max_level_mm)
        return self.geometry.sensor_height_mm - surface


def storm_response(
    pot_geometry: GullyGeometry, storm: Storm, rain_factor: float, drain_time: float
) -> tuple[float, float, float]:
    """(peak excess mm, peak time, time back below `RECOVERED_MM`) for a storm on a pot that starts at
    its standing level: what the storm label reports."""
    excess = 0.0
    peak, peak_t = 0.0, storm.start
    cap = pot_geometry.max_level_mm - pot_geometry.outlet_invert_mm
    decay = math.exp(-BLOCK_S / drain_time)
    for i, intensity in enumerate(storm.intensities):
        inflow = pot_geometry.catchment * intensity * rain_factor / HOUR
        excess = min(excess * decay + inflow * drain_time * (1.0 - decay), cap)
        if excess > peak:
            peak, peak_t = excess, storm.start + (i + 1) * BLOCK_S
    recovered = storm.end + drain_time * math.log(excess / RECOVERED_MM) if excess > RECOVERED_MM else storm.end
    return peak, peak_t, recovered
