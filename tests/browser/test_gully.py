"""One gully's page: the level chart drawn by plotly.js served by the app itself (nothing from a CDN:
the page fixture aborts and fails on any request beyond 127.0.0.1), every time range, a CSV export
holding exactly what the chart shows, and the cleanse priority."""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser import world as seeded
from tests.browser.browsing import login

pytestmark = pytest.mark.browser

GULLY = f"/gullies/{seeded.FLOODING}"
RANGES = {"6h": "6 hours", "24h": "24 hours", "7d": "7 days", "30d": "30 days", "1y": "1 year"}


def _wait_for_chart(page: Page) -> dict[str, object]:
    page.wait_for_function("() => [...document.querySelectorAll('[data-figure]')].some(e => e.data?.length)")
    info: dict[str, object] = page.evaluate(
        """() => { const e = [...document.querySelectorAll('[data-figure]')].find(e => e.data?.length);
            return {traces: e.data.length, points: Math.max(...e.data.map(t => (t.y || []).length)),
                    svg: !!e.querySelector('.main-svg'), title: e.layout?.title?.text || ''}; }"""
    )
    return info


def test_the_chart_is_drawn_by_the_apps_own_plotly_js(page: Page) -> None:
    scripts: list[str] = []

    def seen(request: Request) -> None:
        if request.resource_type == "script":
            scripts.append(request.url)

    page.on("request", seen)
    login(page, "highways", then=GULLY)
    chart = _wait_for_chart(page)
    assert chart["svg"] and int(str(chart["points"])) > 10, chart
    plotly = [u for u in scripts if "plotly" in u]
    assert plotly and all(u.startswith(page.url.split("/gullies")[0] + "/static/") for u in plotly), scripts
    assert page.evaluate("() => typeof Plotly.version") == "string"


def test_every_time_range_shows_a_chart_and_exports_what_it_shows(page: Page) -> None:
    login(page, "highways", then=GULLY)
    for key, label in RANGES.items():
        with page.expect_navigation():
            page.get_by_role("navigation", name="Time range").get_by_role("link", name=label, exact=True).click()
        assert f"range={key}" in page.url
        chart = _wait_for_chart(page)
        assert label in str(chart["title"]), chart
        shown = re.search(r"(\d+) (readings|buckets)", page.get_by_role("main").inner_text())
        assert shown, f"{key}: the page does not say how many points it shows"
        href = page.get_by_role("link", name=re.compile("CSV")).get_attribute("href")
        assert href
        response = page.request.get(href)
        assert response.status == 200 and "csv" in response.headers["content-type"], response.headers
        rows = list(csv.DictReader(io.StringIO(response.text())))
        assert rows and all(r.get("device_id", seeded.FLOODING) == seeded.FLOODING for r in rows)
        if shown.group(2) == "buckets":  # one row per bucket and quantity: the level's buckets are the chart's
            rows = [r for r in rows if r["quantity"] == "distance_mm"]
            assert len({r["start"] for r in rows}) == len(rows)
        assert len(rows) == int(shown.group(1)), f"{key}: the CSV has {len(rows)} rows, the page shows {shown.group(0)}"


def test_the_gully_page_gives_its_cleanse_priority_and_latest_state(page: Page) -> None:
    login(page, "highways", then=GULLY)
    priority = page.get_by_role("region", name="Cleanse priority")
    expect(priority).to_contain_text(re.compile(r"\d+"))
    main = page.get_by_role("main")
    expect(main).to_contain_text(re.compile(r"Water level\s*\d+ mm", re.I))
    expect(main).to_contain_text(re.compile("flood", re.I))  # its open flood alert


def test_an_unknown_gully_is_a_404_page(page: Page) -> None:
    login(page, "highways", then="/network")
    response = page.goto("/gullies/no-such-gully")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_be_visible()
