"""The care flat pages (a heatmap per room, the event timeline with the fall) and device health by
gateway, as care and highways see them."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import world as seeded
from tests.browser.browsing import login

pytestmark = pytest.mark.browser


def test_care_opens_its_flat_from_the_list_and_sees_a_heatmap_per_room_and_the_fall(page: Page) -> None:
    login(page, "care", then="/care")
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile(seeded.FLAT)).click()
    assert page.url.endswith(f"/care/flats/{seeded.FLAT}")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-figure]')].filter(e => e.data?.length).length >= 2"
    )
    rooms = page.get_by_role("heading", level=3).all_inner_texts()
    assert {"bedroom", "bathroom"} <= {r.strip().lower() for r in rooms}, rooms
    heatmaps = page.evaluate(
        "() => [...document.querySelectorAll('[data-figure]')].filter(e => e.data?.length).map(e => e.data[0].type)"
    )
    assert heatmaps.count("heatmap") >= 2, heatmaps
    timeline = page.get_by_role("region", name="Timeline")
    expect(timeline.get_by_role("row").filter(has_text=re.compile("fall", re.I))).not_to_have_count(0)


def test_device_health_lists_the_gullies_by_gateway_with_battery_and_signal(page: Page) -> None:
    login(page, "highways", then="/network")
    gateways = page.get_by_role("region", name="Gateways")
    expect(gateways.get_by_role("link", name=seeded.TOWN_GATEWAY)).to_be_visible()
    main = page.get_by_role("main")
    for name, _lat, _lon in seeded.GULLIES.values():
        expect(main.get_by_role("link", name=name, exact=True).first).to_be_visible()
    row = main.get_by_role("row").filter(has=page.get_by_role("link", name=seeded.GULLIES[seeded.LOW_BATTERY][0]))
    expect(row.first).to_contain_text(re.compile(r"3\.00 V"))
    expect(row.first).to_contain_text(re.compile(r"-?\d+ dBm"))
    with page.expect_navigation():
        gateways.get_by_role("link", name=seeded.TOWN_GATEWAY).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(seeded.TOWN_GATEWAY)
    expect(page.get_by_role("main")).to_contain_text(seeded.GULLIES[seeded.QUIET][0])


def test_care_sees_its_sensors_health_by_flat_and_room(page: Page) -> None:
    login(page, "care", then="/network")
    main = page.get_by_role("main")
    for device in (seeded.CARE_BEDROOM, seeded.CARE_BATHROOM):
        expect(main.get_by_role("row").filter(has_text=device).first).to_be_visible()
