"""The readings routes over real HTTP: raw pages, per-bucket statistics checked against numbers
computed here from the seeded values, CSV, the default range, visibility and audit."""

from __future__ import annotations

import csv
import io
import statistics
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from store import audit
from tests.integration.api.conftest import bearer
from tests.integration.api.seed_devices import register, uplinks

#: 10:00 UTC two days ago: buckets of 1 h start on the hour.
T0 = (datetime.now(UTC) - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
#: gully-1: a reading every 10 minutes for 3 hours (18), distance and battery; every third one tilted.
TIMES = [T0 + timedelta(minutes=10 * i) for i in range(18)]
VALUES: list[dict[str, float | bool]] = [
    {"distance_mm": 1000.0 + 37 * (i % 7), "battery_v": 3.6 - i * 0.01, "tilted": i % 3 == 0} for i in range(18)
]


@pytest.fixture
def seeded(db_url: str) -> str:
    register(db_url, "gully-1,app,gully,,,,,\ncare-1,app,care,,,,,\n")
    uplinks(db_url, "gully-1", TIMES, readings=VALUES)
    recent = [datetime.now(UTC) - timedelta(hours=h) for h in (30, 3, 2)]
    uplinks(db_url, "care-1", recent, readings=[{"occupied": True, "temperature_c": 21.5}] * 3)
    return db_url


def url(device: str, csv_route: bool = False) -> str:
    return f"/api/v1/devices/{device}/readings" + (".csv" if csv_route else "")


RANGE: dict[str, str] = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=3)).isoformat()}


def test_raw_pages_cover_the_range_in_order(api: str, people: dict[str, str], seeded: str) -> None:
    token = bearer(people["highways"])
    seen: list[dict[str, object]] = []
    cursor = None
    with httpx.Client(base_url=api) as client:
        for _ in range(10):
            params: dict[str, str | int] = {**RANGE, "limit": 5, **({"cursor": cursor} if cursor else {})}
            body = client.get(url("gully-1"), params=params, headers=token).json()
            seen += body["items"]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert [datetime.fromisoformat(str(r["time"])) for r in seen] == TIMES
        assert seen[3]["values"] == {"distance_mm": 1111.0, "battery_v": pytest.approx(3.57), "tilted": True}
        inverted = client.get(url("gully-1"), params={"start": RANGE["end"], "end": RANGE["start"]}, headers=token)
        assert inverted.json() == {"items": [], "next_cursor": None}
        naive = client.get(url("gully-1"), params={"start": "2026-01-01T00:00:00"}, headers=token)
        assert naive.status_code == 422 and naive.json()["error"]["details"][0]["loc"] == ["query", "start"]


def expected_buckets() -> dict[datetime, dict[str, tuple[float, float, float, int]]]:
    """Per hour: min, max, mean and count of each seeded quantity, computed here (booleans as 0/1)."""
    hours: dict[datetime, list[dict[str, float | bool]]] = {}
    for t, values in zip(TIMES, VALUES, strict=True):
        hours.setdefault(t.replace(minute=0), []).append(values)
    out: dict[datetime, dict[str, tuple[float, float, float, int]]] = {}
    for hour, rows in hours.items():
        out[hour] = {}
        for name in rows[0]:
            numbers = [float(r[name]) for r in rows]
            out[hour][name] = (min(numbers), max(numbers), statistics.fmean(numbers), len(numbers))
    return out


def test_buckets_match_statistics_computed_here(api: str, people: dict[str, str], seeded: str) -> None:
    expected = expected_buckets()
    with httpx.Client(base_url=api) as client:
        body = client.get(url("gully-1"), params={**RANGE, "bucket": "1h"}, headers=bearer(people["admin"])).json()
        assert body["next_cursor"] is None
        got = {datetime.fromisoformat(b["start"]): b for b in body["items"]}
        assert sorted(got) == sorted(expected) and len(got) == 3
        for hour, quantities in expected.items():
            assert got[hour]["readings"] == 6
            assert set(got[hour]["quantities"]) == set(quantities)
            for name, (low, high, mean, count) in quantities.items():
                stats = got[hour]["quantities"][name]
                assert (stats["min"], stats["max"], stats["count"]) == (
                    pytest.approx(low), pytest.approx(high), count,
                )  # fmt: skip
                assert stats["mean"] == pytest.approx(mean)
        # One bucket per page: the same buckets, page by page, none split.
        pages, cursor = [], None
        for _ in range(10):
            params: dict[str, str | int] = {
                **RANGE,
                "bucket": "1h",
                "limit": 1,
                **({"cursor": cursor} if cursor else {}),
            }
            page = client.get(url("gully-1"), params=params, headers=bearer(people["admin"])).json()
            pages += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == body["items"]
        day = client.get(url("gully-1"), params={**RANGE, "bucket": "1d"}, headers=bearer(people["admin"])).json()
        assert [b["readings"] for b in day["items"]] == [18]


def test_csv_holds_the_same_data(api: str, people: dict[str, str], seeded: str) -> None:
    with httpx.Client(base_url=api) as client:
        raw = client.get(url("gully-1", csv_route=True), params={**RANGE, "limit": 10}, headers=bearer(people["admin"]))
        assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(raw.text)))
        assert len(rows) == 10 and rows[3]["distance_mm"] == "1111.0" and rows[3]["tilted"] == "true"
        assert rows[0]["in_bed"] == ""
        rest = client.get(
            url("gully-1", csv_route=True),
            params={**RANGE, "cursor": raw.headers["x-next-cursor"]},
            headers=bearer(people["admin"]),
        )
        assert "x-next-cursor" not in rest.headers and len(rest.text.splitlines()) == 1 + 8
        bucketed = client.get(
            url("gully-1", csv_route=True), params={**RANGE, "bucket": "1h"}, headers=bearer(people["admin"])
        )
        lines = list(csv.DictReader(io.StringIO(bucketed.text)))
        assert len(lines) == 3 * 3
        first = expected_buckets()[T0]["distance_mm"]
        distance = next(r for r in lines if r["quantity"] == "distance_mm")
        assert (float(distance["min"]), float(distance["max"]), float(distance["mean"])) == pytest.approx(first[:3])


def test_care_readings_are_hidden_from_highways_and_audited(api: str, people: dict[str, str], seeded: str) -> None:
    with httpx.Client(base_url=api) as client:
        for route in (url("care-1"), url("care-1", csv_route=True)):
            hidden = client.get(route, headers=bearer(people["highways"]))
            assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
        # The default range is the last 24 hours: the reading 30 hours ago is not in it.
        care = client.get(url("care-1"), headers=bearer(people["care"])).json()
        assert [r["values"] for r in care["items"]] == [{"temperature_c": 21.5, "occupied": True}] * 2
        client.get(url("care-1", csv_route=True), params={"bucket": "1d"}, headers=bearer(people["care"]))
        client.get(url("gully-1"), headers=bearer(people["admin"]))  # not care: not audited
    with psycopg.connect(seeded) as conn:
        entries = [e for e in audit.entries(conn, limit=100) if e.action.startswith("care_readings")]
    assert [(e.actor, e.action, e.target) for e in reversed(entries)] == [
        ("care", "care_readings_viewed", "device:app/care-1"),
        ("care", "care_readings_exported", "device:app/care-1"),
    ]
    assert set(entries[0].detail) == {"devices", "start", "end", "bucket"} and entries[0].detail["bucket"] == "1d"
