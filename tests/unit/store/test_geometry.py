"""Gully geometry: water level and fill % from a distance reading (pure functions)."""

from __future__ import annotations

import math

import pytest

from store.geometry import fill_pct, gully_fill_pct, water_level_mm


def test_water_level_is_sensor_height_minus_distance() -> None:
    assert water_level_mm(700.0, 1200.0) == 500.0
    assert water_level_mm(1200.0, 1200.0) == 0.0  # an empty pot: the echo is the floor
    assert water_level_mm(0.0, 1200.0) == 1200.0  # water at the sensor face


@pytest.mark.parametrize(("distance", "height"), [(None, 1200.0), (700.0, None), (None, None)])
def test_water_level_is_unknown_without_a_distance_or_a_height(distance, height) -> None:
    assert water_level_mm(distance, height) is None


@pytest.mark.parametrize(("distance", "height"), [(math.nan, 1200.0), (700.0, math.inf), (-math.inf, 900.0)])
def test_water_level_of_non_finite_inputs_is_unknown(distance, height) -> None:
    assert water_level_mm(distance, height) is None


def test_fill_is_zero_at_the_outlet_invert_and_100_at_the_sensor() -> None:
    assert fill_pct(400.0, 1200.0, 400.0) == 0.0
    assert fill_pct(1200.0, 1200.0, 400.0) == 100.0
    assert fill_pct(800.0, 1200.0, 400.0) == 50.0
    assert fill_pct(600.0, 1000.0, 0.0) == pytest.approx(60.0)


def test_fill_is_not_clamped() -> None:
    assert fill_pct(200.0, 1200.0, 400.0) == -25.0  # below the trapped water: a dry or leaking pot
    assert fill_pct(1400.0, 1200.0, 400.0) == 125.0


@pytest.mark.parametrize(
    ("level", "height", "invert"),
    [(None, 1200.0, 400.0), (500.0, None, 400.0), (500.0, 1200.0, None), (math.nan, 1200.0, 400.0)],
)
def test_fill_is_unknown_when_anything_is(level, height, invert) -> None:
    assert fill_pct(level, height, invert) is None


@pytest.mark.parametrize("invert", [1200.0, 1300.0])
def test_fill_of_an_impossible_geometry_is_unknown(invert: float) -> None:
    assert fill_pct(800.0, 1200.0, invert) is None  # never a division by zero or a negative span


def test_fill_from_a_distance() -> None:
    assert gully_fill_pct(400.0, 1200.0, 400.0) == 50.0  # level 800: halfway from 400 to 1200
    assert gully_fill_pct(None, 1200.0, 400.0) is None  # no echo
    assert gully_fill_pct(400.0, None, 400.0) is None  # an unregistered gully
