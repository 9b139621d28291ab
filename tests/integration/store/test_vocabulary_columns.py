"""The `readings` table has exactly one column per measurement name the decoders may emit."""

from __future__ import annotations

import psycopg

import decoders
from store.records import READING_COLUMNS


def test_reading_columns_are_the_vocabulary() -> None:
    assert sorted(READING_COLUMNS) == sorted(decoders.VOCABULARY), (
        "decoders.types.VOCABULARY and store.records.READING_COLUMNS differ: add a migration for the new name"
    )


def test_readings_table_matches_reading_columns(migrated_url: str) -> None:
    with psycopg.connect(migrated_url) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'readings' "
                "ORDER BY ordinal_position"
            )
        ]
    assert columns == ["time", *READING_COLUMNS, "device_ref"]  # device_ref was added by 0002
