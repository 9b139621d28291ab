"""The named scenarios `lorawatch simulate` offers: each one a fleet kind plus how eventful it is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simulators import care, demo_town, gully
from simulators.run import RunConfig
from simulators.simulation import Simulation


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    build: Callable[[RunConfig], Simulation]
    default_days: float = 7.0


def _gully(name: str, description: str, params: gully.GullyParams, days: float = 7.0) -> Scenario:
    return Scenario(name, description, lambda config: gully.build(config, params, name), days)


def _care(name: str, description: str, params: care.CareParams, days: float = 7.0) -> Scenario:
    return Scenario(name, description, lambda config: care.build(config, params, name), days)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        _gully(
            "gully-storms",
            "gullies through rain storms: rise and recession set by each gully's drain time",
            gully.GullyParams(storms_per_week=3.0),
        ),
        _gully(
            "gully-blockage",
            "a third of the gullies block: storms then recede slowly",
            gully.GullyParams(storms_per_week=2.0, blockages=0.33),
        ),
        _gully(
            "gully-silt",
            "silt creeps up in a third of the gullies over four weeks",
            gully.GullyParams(storms_per_week=1.0, silt=0.33),
            28.0,
        ),
        _gully(
            "gully-faults",
            "sensor faults: spikes, stuck values, no echo, parked-vehicle plateaus, tilt",
            gully.GullyParams(storms_per_week=1.0, faults_per_week=1.5),
        ),
        _gully(
            "gateway-outage",
            "gateways go down for hours; the gullies only they hear fall silent, then re-join",
            gully.GullyParams(storms_per_week=1.0, gateway_outages=3),
        ),
        _gully(
            "battery-decay",
            "a quarter of the gully batteries run low during the week",
            gully.GullyParams(storms_per_week=1.0, battery_decay=0.25),
        ),
        _gully(
            "gully-mixed",
            "everything at once: storms, blockages, silt, faults, outages, devices gone quiet, low batteries, re-joins",
            gully.GullyParams(
                storms_per_week=2.0,
                blockages=0.1,
                silt=0.1,
                faults_per_week=0.3,
                gateway_outages=1,
                battery_decay=0.05,
                rejoins_per_week=0.05,
                silences_per_week=0.02,
            ),
        ),
        _care(
            "care-routine",
            "residents' ordinary days: sleep, bathroom visits, meals, living room",
            care.CareParams(),
        ),
        _care(
            "care-falls",
            "falls out of bed: VS373 alarm triggered, deactivated when staff arrive, history re-sent",
            care.CareParams(falls_per_week=1.0),
        ),
        _care(
            "care-inactivity",
            "hours without movement in the living room, through a meal",
            care.CareParams(inactivity_per_week=1.0),
        ),
        _care(
            "care-wandering",
            "night-time wandering between hall, kitchen and living room",
            care.CareParams(wandering_per_week=1.0),
        ),
        _care(
            "care-mixed",
            "routine with falls, inactivity episodes and night-time wandering",
            care.CareParams(0.3, 0.3, 0.3),
        ),
        _gully(
            "demo-town-gullies",
            f"the demo town ({demo_town.GULLIES} gullies): gully-mixed, with a storm and blocked gullies "
            "in the first hours",
            demo_town.GULLY_PARAMS,
        ),
        _care(
            "demo-town-care",
            f"the demo care home ({demo_town.FLATS} flats): care-mixed, with a fall in the first hour",
            demo_town.CARE_PARAMS,
        ),
    )
}


def get(name: str) -> Scenario:
    """The scenario called `name`, or `KeyError` with a message listing the valid names."""
    try:
        return SCENARIOS[name]
    except KeyError:
        valid = ", ".join(sorted(SCENARIOS))
        msg = f"unknown scenario {name!r}; valid scenarios: {valid}"
        raise KeyError(msg) from None
