"""Browser tests: Debian's chromium (/usr/bin/chromium, never a downloaded browser) driven by
playwright, against the real app under uvicorn on a loopback port, on the test database as
lorawatch_api, with a seeded world (tests/browser/world.py) and one user per role.

The browser, one browser context and the server start once for this package (and stop after its last
test, so no connection of theirs outlives it into the rest of the suite); each test gets a new page
with no cookies, and the database is emptied and the world seeded again for every test (the `world`
fixture), so tests that acknowledge alerts or flood gullies never meet.
Every page a test opens is held to loopback (a request anywhere else is aborted and fails the test)
and fails the test on any uncaught script error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize, sync_playwright

from dashboard.app import create_app
from store import users
from tests.browser import world as seeded
from tests.browser.browsing import ARTIFACTS, PASSWORD, ROLES, LocalOnly
from tests.integration.api.conftest import CHEAP, base_url, running, settings_for

CHROMIUM = Path(os.environ.get("LORAWATCH_TEST_CHROMIUM", "/usr/bin/chromium"))
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def chromium(playwright_driver: Playwright) -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run scripts/setup.sh (Debian package chromium)"
    browser = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
    )
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def site(migrated_url: str) -> Iterator[str]:
    """The app's base URL: create_app under uvicorn, connected as lorawatch_api (as `api_db_url`)."""
    from store.access import api_conninfo

    api_url = os.environ.get("LORAWATCH_TEST_API_DATABASE_URL") or api_conninfo(migrated_url)
    with running(create_app(settings_for(api_url))) as server:
        assert server.started, "the app did not start"
        yield base_url(server)


@pytest.fixture
def world(db_url: str) -> seeded.World:
    """An emptied database with the seeded council and a user per role (named after it, PASSWORD)."""
    with psycopg.connect(db_url) as conn:
        for role in ROLES:
            users.create_user(conn, role, role, CHEAP.hash(PASSWORD))
    return seeded.seed(db_url)


@pytest.fixture(scope="package")
def guard() -> LocalOnly:
    return LocalOnly()


@pytest.fixture(scope="package")
def browser_context(chromium: Browser, guard: LocalOnly, site: str) -> Iterator[BrowserContext]:
    """One context for the package, held to loopback, so plotly.js is parsed once, not per test
    (its HTTP and code caches live in the context); each test still starts with no cookies."""
    context = chromium.new_context(viewport=VIEWPORT, base_url=site, locale="en-GB", timezone_id="Europe/London")
    context.set_default_timeout(10_000)
    guard.install(context)
    context.on("page", guard.watch)
    yield context
    context.close()


@pytest.fixture
def page(browser_context: BrowserContext, guard: LocalOnly, world: seeded.World) -> Iterator[Page]:
    """A new page with no session (cookies cleared) at 1280x800; the world is seeded. Fails the test
    if any page asked for something beyond 127.0.0.1 or threw an uncaught script error."""
    browser_context.clear_cookies()
    guard.refused.clear()
    guard.errors.clear()
    p = browser_context.new_page()
    try:
        yield p
    finally:
        for other in browser_context.pages:
            other.close()
    assert not guard.refused, f"pages asked for something beyond 127.0.0.1: {guard.refused}"
    assert not guard.errors, f"uncaught script errors: {guard.errors}"


@pytest.fixture(scope="package")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
