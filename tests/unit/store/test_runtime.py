"""quiet_gc: the collector's thresholds raised, the start-up heap frozen once per process, nothing lost."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from store.runtime import THRESHOLDS, quiet_gc


@pytest.fixture
def collector() -> Iterator[None]:
    """Give the process back its collector as it was."""
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    yield
    gc.set_threshold(*thresholds)
    if not frozen:
        gc.unfreeze()


@pytest.mark.usefixtures("collector")
def test_thresholds_are_raised_and_the_heap_frozen_once() -> None:
    gc.unfreeze()
    quiet_gc()
    assert gc.get_threshold() == THRESHOLDS
    frozen = gc.get_freeze_count()
    assert frozen > 0
    quiet_gc()  # a second service in the same process freezes nothing more
    assert gc.get_freeze_count() == frozen


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.mark.usefixtures("collector")
def test_cycles_made_after_it_are_still_collected() -> None:
    quiet_gc()
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None
