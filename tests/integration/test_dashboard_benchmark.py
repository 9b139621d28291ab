"""`python -m benchmarks.dashboard --quick` end to end on the test database: the generated fleet is
loaded, the real app serves the pages as lorawatch_api to a logged-in highways user, and the report
holds the server time of the overview and of both gully charts (read from Server-Timing)."""

from __future__ import annotations

import time

import httpx
import psycopg

from benchmarks import dashboard as bench
from dashboard.config import ApiSettings
from store import access


def test_quick_benchmark_reports_the_three_page_timings(db_url: str) -> None:
    started = time.monotonic()
    heading, report = bench.run(["--quick", "--database-url", db_url])
    assert time.monotonic() - started < 60
    assert heading.startswith("dashboard: 50 gullies x 30 days, 10 requests each")

    assert set(report.timings) == {"overview", "chart_1y", "chart_24h"}
    for t in (report.baseline, *report.timings.values()):
        assert len(t.server) == 10
        assert all(ms > 0 for ms in t.server)
        assert t.median <= t.p95 <= max(t.server)
        assert all(s <= w for s, w in zip(t.server, t.wall, strict=True))  # the server's share of the wall time
    assert report.timings["overview"].size > report.baseline.size
    # The store's own view: every bench gully (the never-heard one too), no care sensor.
    assert report.store.size == 50 + 1

    # 30 days of 15-minute readings for 50 gullies (the offline one stops 2 days early) and 12 care sensors.
    per_device = 30 * 96
    assert 62 * per_device - 2 * 96 - 62 <= report.rows <= 62 * per_device + 62
    with psycopg.connect(db_url) as conn:
        open_alerts = conn.execute("SELECT count(*) FROM alerts WHERE state <> 'resolved'").fetchone()
        assert open_alerts is not None
        assert open_alerts[0] >= 8  # some of every gully category
        offline = conn.execute(
            "SELECT count(*) FROM devices WHERE kind = 'gully' AND last_seen < now() - interval '1 day'"
        ).fetchone()
        assert offline == (1,)

    lines = report.lines()
    for name in ("GET /overview", "GET /gullies/{id}?range=1y", "GET /gullies/{id}?range=24h", "baseline"):
        assert any(line.startswith(name) or name in line for line in lines)
    assert any("target < 100 ms" in line and line.endswith(("PASS", "FAIL")) for line in lines)
    assert any("target < 150 ms" in line and line.endswith(("PASS", "FAIL")) for line in lines)
    assert lines[-1] in ("PASS", "BELOW TARGET")


def test_server_timing_header_is_on_every_response(db_url: str) -> None:
    settings = ApiSettings(database_url=access.api_conninfo(db_url), password_profile="cheapest")
    with bench.serving(settings) as base, httpx.Client(base_url=base) as client:
        for path in ("/healthz", "/api/v1/auth/me", "/no-such-page"):
            response = client.get(path)
            assert bench.server_ms(response) >= 0, path
            [value] = response.headers.get_list("server-timing")
            assert value.startswith("app;dur=")
