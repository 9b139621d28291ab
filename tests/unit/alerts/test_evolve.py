"""`evolve` and `evolver` copy the evaluators' frozen states exactly as `dataclasses.replace` does."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from alerts.evaluators.blockage import BlockageState, Recession
from alerts.evaluators.evolve import evolve, evolver
from alerts.evaluators.sensor_fault import FaultState

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class Plain:
    """Not slotted: copied by `dataclasses.replace` itself."""

    a: int = 0
    b: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Base:
    a: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Child(Base):
    b: tuple[int, ...] = ()


@pytest.mark.parametrize("copy", [evolve, evolver(FaultState)], ids=["evolve", "evolver"])
def test_a_copy_is_replace_and_the_original_is_untouched(copy: object) -> None:
    state = FaultState(last=T0, run_mm=12.5, spikes=(1.0, 2.0), tilted=2)
    made = copy(state, tilted=0, prev_mm=3.0, no_echo_since=None)  # type: ignore[operator]
    assert made == dataclasses.replace(state, tilted=0, prev_mm=3.0, no_echo_since=None)
    assert made is not state and type(made) is FaultState
    assert state == FaultState(last=T0, run_mm=12.5, spikes=(1.0, 2.0), tilted=2)
    assert copy(state) == state  # type: ignore[operator]


def test_every_field_is_copied() -> None:
    values: dict[str, Any] = {f.name: object() for f in dataclasses.fields(BlockageState)}
    state = BlockageState(**values)
    assert all(getattr(evolve(state), name) is value for name, value in values.items())
    changed = evolver(BlockageState)(state, dry=1.5)
    assert changed.dry == 1.5
    assert all(getattr(changed, name) is value for name, value in values.items() if name != "dry")


def test_an_unknown_field_is_refused_as_replace_refuses_it() -> None:
    with pytest.raises(TypeError):
        evolve(Recession(start=T0, top=T0, peak=1.0, base=0.0, low=1.0), nonsense=1)
    with pytest.raises(TypeError):
        evolver(FaultState)(FaultState(), nonsense=1)


def test_inherited_slots_and_unslotted_classes_are_copied_too() -> None:
    assert evolve(Child(1, (2,)), b=(3,)) == Child(1, (3,))
    assert evolve(Child(1, (2,)), a=5) == Child(5, (2,))
    assert evolve(Plain(1, "x"), b="y") == Plain(1, "y")
    with pytest.raises(TypeError):
        evolve(Plain(), nonsense=1)
