"""The cleanse-priority list: gullies ranked by their silt and blockage evidence, from what the
detectors have learned (their stored state) and the alerts they have open. Pure: the caller reads the
store (`lorawatch gullies priority`, later the dashboard).

Why a score and not just "open alerts": an engineer planning a round of cleansing wants the gullies
that are nearly there too. The score adds, for each gully:

- 100 for an open blockage alert, 60 for an open silt alert;
- the silt evidence short of an alert: the rise of its dry-weather level above its learned clean
  level (mm, capped at 100) and its recent daily slope (mm/day x 5, capped at 50).

Its learned clean drain time is shown beside (a blockage is judged against it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from alerts.evaluators import blockage, silt
from alerts.rules import BlockageRule, SiltRule


@dataclass(frozen=True, slots=True)
class Priority:
    device_id: str
    name: str | None
    score: float
    blockage_open: bool
    silt_open: bool
    silt_rise_mm: float | None
    silt_mm_per_day: float | None
    drain_time_min: float | None  # learned from its clean recessions

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def rank(
    gullies: Iterable[tuple[str, str | None]],
    silt_states: Mapping[str, tuple[SiltRule, dict[str, Any]]],
    blockage_states: Mapping[str, tuple[BlockageRule, dict[str, Any]]],
    open_categories: Mapping[str, set[str]],
) -> list[Priority]:
    """Every gully (device_id, name) with its evidence, highest score first."""
    out = []
    for device_id, name in gullies:
        cats = open_categories.get(device_id, set())
        rise = slope = learned = None
        score = 100.0 * ("blockage" in cats) + 60.0 * ("silt" in cats)
        if device_id in silt_states:
            s_rule, raw = silt_states[device_id]
            s_state = silt.SiltState.from_json(raw)
            levels = [(d.toordinal(), v) for d, v in s_state.levels[-s_rule.window.days :]]
            if s_state.clean is not None and levels:
                rise = round(levels[-1][1] - s_state.clean, 1)
                score += min(max(rise, 0.0), 100.0)
            if len(levels) >= 2:
                slope = round(silt.theil_sen([(float(x), y) for x, y in levels]), 2)
                score += min(max(slope * 5.0, 0.0), 50.0)
        if device_id in blockage_states:
            b_rule, raw = blockage_states[device_id]
            b_state = blockage.BlockageState.from_json(raw)
            tau = blockage.learned(b_rule, b_state)
            learned = round(tau, 1) if tau is not None else None
        out.append(Priority(device_id, name, round(score, 1), "blockage" in cats, "silt" in cats, rise, slope,
                            learned))  # fmt: skip
    return sorted(out, key=lambda p: (-p.score, p.device_id))
