"""axe-core (WCAG 2.2 AA rules) on every page, as each role that opens it sees it, once its scripts
have drawn the charts: no serious or critical violation. One test per role walks its pages and
reports every page's violations together."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser import world as seeded
from tests.browser.browsing import assert_accessible, axe_violations, describe_violations, login

pytestmark = pytest.mark.browser

GULLY = f"/gullies/{seeded.FLOODING}"
PAGES = {
    "highways": (
        "/overview",
        f"{GULLY}?range=24h",
        f"{GULLY}?range=1y",
        "/inbox",
        "/network",
        f"/network/gateways/{seeded.TOWN_GATEWAY}",
        "/gullies/no-such-gully",  # the 404 page
        "/network/dead-letters",  # the 403 page
    ),
    "care": ("/inbox", "/care", f"/care/flats/{seeded.FLAT}", "/network", "/overview"),
    "admin": ("/overview", "/inbox", "/network/dead-letters"),
}


def settle(page: Page) -> None:
    """Charts drawn and the page's requests done, so axe sees what a person sees."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-figure]')].every(e => e.querySelector('.main-svg'))"
    )


def test_the_login_form_is_accessible(page: Page) -> None:
    page.goto("/login")
    assert_accessible(page)
    page.get_by_label("Username").fill("care")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("alert").wait_for()
    assert_accessible(page)  # and with its error showing


@pytest.mark.parametrize("role", list(PAGES))
def test_every_page_of_the_role_has_no_serious_accessibility_violation(page: Page, role: str) -> None:
    paths = PAGES[role]
    login(page, role, then=paths[0])
    found = {}
    for i, path in enumerate(paths):
        if i:  # the login form has already brought the person to the first
            page.goto(path)
        settle(page)
        violations = axe_violations(page)
        if violations:
            found[path] = describe_violations(violations)
    assert not found, f"axe: serious/critical WCAG 2.2 AA violations for {role}:\n" + "\n".join(
        f"{path}:\n{text}" for path, text in found.items()
    )


def test_the_overview_stays_accessible_after_it_refreshes_itself(page: Page, db_url: str) -> None:
    login(page, "highways")
    seeded.flood(db_url, seeded.QUIET)
    page.get_by_role("table").get_by_role("row").filter(has_text=seeded.GULLIES[seeded.QUIET][0]).filter(
        has_text="Flooding"
    ).wait_for(timeout=20_000)
    settle(page)
    assert_accessible(page)
