"""The flood-risk overview as a highways engineer watches it: gullies by risk with their state in
words, open alerts on top, a map whose points differ in colour AND shape by state, and the page
updating itself (no reload) when a reading floods a gully."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser import world as seeded
from tests.browser.browsing import login

pytestmark = pytest.mark.browser

NAME = {device: name for device, (name, _lat, _lon) in seeded.GULLIES.items()}


def _table(page: Page) -> Locator:
    return page.get_by_role("table", name=re.compile("Gullies"))


def _row(page: Page, device: str) -> Locator:
    return _table(page).get_by_role("row").filter(has=page.get_by_role("link", name=NAME[device], exact=True))


def _state_text(page: Page, device: str) -> str:
    """The words in the row's State column (found by its header, not by position or colour)."""
    headers = [h.strip() for h in _table(page).get_by_role("columnheader").all_inner_texts()]
    column = headers.index("State")
    return _row(page, device).get_by_role("cell").nth(column).inner_text().strip()


def _order(page: Page) -> list[str]:
    """The gullies' device ids in the table's order."""
    links = _table(page).get_by_role("row").get_by_role("link").all_inner_texts()
    by_name = {v: k for k, v in NAME.items()}
    return [by_name[t.strip()] for t in links if t.strip() in by_name]


def test_the_table_puts_the_flooding_gully_first_and_says_every_state_in_words(page: Page) -> None:
    login(page, "highways")
    order = _order(page)
    assert sorted(order) == sorted(seeded.GULLIES), order
    assert order[0] == seeded.FLOODING, order
    assert order.index(seeded.QUIET) > order.index(seeded.OFFLINE), order
    assert re.search("flood", _state_text(page, seeded.FLOODING), re.I)
    assert re.search("offline", _state_text(page, seeded.OFFLINE), re.I)
    assert re.search("normal", _state_text(page, seeded.QUIET), re.I)
    row = _row(page, seeded.FLOODING).inner_text()
    assert re.search(r"\d+ %", row) and re.search(r"\d+ mm", row), row  # latest fill and level
    assert re.search(r"rising", row, re.I), row  # the trend, in words
    assert re.search(r"\d\.\d\d V", _row(page, seeded.LOW_BATTERY).inner_text())  # battery
    assert re.search(r"ago|just now", _row(page, seeded.QUIET).inner_text())  # last seen


def test_open_alerts_come_before_the_table(page: Page) -> None:
    login(page, "highways")
    alerts = page.get_by_role("region", name=re.compile("Open alerts"))
    expect(alerts).to_contain_text(seeded.FLOODING)
    expect(alerts).to_contain_text(re.compile("flood", re.I))
    above = page.evaluate(
        """([a, t]) => !!(a.compareDocumentPosition(t) & Node.DOCUMENT_POSITION_FOLLOWING)""",
        [alerts.element_handle(), _table(page).element_handle()],
    )
    assert above, "the open alerts are not above the table"


def test_the_map_tells_states_apart_by_shape_as_well_as_colour(page: Page) -> None:
    login(page, "highways")
    page.wait_for_function("() => document.querySelector('#gully-map')?.data?.length > 0")
    traces = page.evaluate(
        """() => document.querySelector('#gully-map').data.map(t => ({
            name: t.name, n: (t.x || t.lon || []).length,
            symbol: t.marker && t.marker.symbol, color: t.marker && t.marker.color}))"""
    )
    shown = [t for t in traces if t["n"]]
    assert sum(t["n"] for t in shown) == len(seeded.GULLIES), traces
    assert len(shown) >= 3, traces  # flooding, offline, normal, battery: at least three states
    assert len({str(t["symbol"]) for t in shown}) == len(shown), f"two states share a shape: {traces}"
    assert len({str(t["color"]) for t in shown}) == len(shown), f"two states share a colour: {traces}"
    names = " ".join(str(t["name"]) for t in shown)
    assert re.search("flood", names, re.I) and re.search("normal", names, re.I), names  # the legend in words
    assert page.locator("#gully-map .main-svg").count() > 0  # plotly drew it


def test_the_overview_updates_in_place_when_a_reading_floods_a_gully(page: Page, db_url: str) -> None:
    login(page, "highways")
    before = _state_text(page, seeded.QUIET)
    assert not re.search("flood", before, re.I), before
    page.evaluate("() => { window.__marker = 'not reloaded'; }")
    seeded.flood(db_url, seeded.QUIET)  # the ingest writer and the alert engine, while the page is open
    flooding = _table(page).get_by_role("row").filter(has_text=NAME[seeded.QUIET]).filter(has_text="Flooding")
    expect(flooding).to_have_count(1, timeout=20_000)
    assert page.evaluate("() => window.__marker") == "not reloaded"
    assert re.search("flood", _state_text(page, seeded.QUIET), re.I)
    order = _order(page)
    assert order.index(seeded.QUIET) < order.index(seeded.OFFLINE), order  # it rose up the table
    alerts = page.get_by_role("region", name=re.compile("Open alerts"))
    expect(alerts).to_contain_text(seeded.QUIET)
    # the map's points follow too
    names = page.evaluate(
        """(id) => document.querySelector('#gully-map').data
            .filter(t => JSON.stringify(t.customdata || t.text || '').includes(id)).map(t => t.name)""",
        seeded.QUIET,
    )
    assert any(re.search("flood", str(n), re.I) for n in names), names
