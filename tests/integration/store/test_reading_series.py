"""Bucketed readings of only the columns asked for (a gully chart's two), the same statistics as all of
them, and a column that is not a reading refused by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from store import reading_series
from tests.integration.api.seed_devices import register, uplinks

T0 = datetime(2026, 11, 2, tzinfo=UTC)


def test_buckets_of_chosen_columns_match_those_of_every_column(db_url: str) -> None:
    register(db_url, "g1,app,gully,,1000,400,,\n")
    times = [T0 + timedelta(minutes=15 * i) for i in range(8)]  # two hours: two one-hour buckets
    readings: list[dict[str, object]] = [
        {"distance_mm": 900.0 - 10 * i, "battery_v": 3.6, "temperature_c": 5.0 + i} for i in range(8)
    ]
    readings[3] = {"distance_mm": 870.0}  # no battery in this one
    uplinks(db_url, "g1", times, readings=readings)
    with psycopg.connect(db_url) as conn:
        ref = conn.execute("SELECT id FROM devices WHERE device_id = 'g1'").fetchone()[0]  # type: ignore[index]
        every = reading_series.buckets(conn, ref, timedelta(hours=1), T0, T0 + timedelta(hours=2))
        chart = reading_series.buckets(
            conn, ref, timedelta(hours=1), T0, T0 + timedelta(hours=2), ("distance_mm", "battery_v")
        )
        with pytest.raises(ValueError, match="not reading columns: bogus"):
            reading_series.buckets(conn, ref, timedelta(hours=1), T0, T0 + timedelta(hours=2), ("distance_mm", "bogus"))
    assert [b.start for b in chart] == [T0, T0 + timedelta(hours=1)]
    assert [b.readings for b in chart] == [4, 4]
    assert all(set(b.quantities) == {"distance_mm", "battery_v"} for b in chart)
    assert "temperature_c" in every[0].quantities
    for whole, narrow in zip(every, chart, strict=True):
        assert narrow.quantities == {k: whole.quantities[k] for k in ("distance_mm", "battery_v")}
    first = chart[0].quantities
    assert (first["distance_mm"].min, first["distance_mm"].max, first["distance_mm"].mean) == (870.0, 900.0, 885.0)
    assert first["battery_v"].count == 3
