"""Screenshots of the overview, a gully chart and the inbox (full page, 1280x800 viewport) saved as
test artifacts under tests/artifacts/, and the overview and inbox also as the README's images
(docs/images/overview.png, docs/images/inbox.png)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser import world as seeded
from tests.browser.browsing import README_IMAGES, login

pytestmark = pytest.mark.browser

PNG = b"\x89PNG\r\n\x1a\n"


def _shoot(page: Page, path: str, out: Path) -> Path:
    page.goto(path)
    page.wait_for_load_state("networkidle")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-figure]')].every(e => e.querySelector('.main-svg'))"
    )
    page.screenshot(path=str(out), full_page=True, animations="disabled")
    data = out.read_bytes()
    assert data.startswith(PNG) and len(data) > 20_000, f"{out}: {len(data)} bytes"
    return out


def test_screenshots_of_the_overview_a_gully_and_the_inbox(page: Page, artifacts: Path) -> None:
    login(page, "highways")
    overview = _shoot(page, "/overview", artifacts / "overview.png")
    _shoot(page, f"/gullies/{seeded.FLOODING}?range=24h", artifacts / "gully.png")
    page.context.clear_cookies()
    login(page, "care")
    inbox = _shoot(page, "/inbox", artifacts / "inbox.png")
    README_IMAGES.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(overview, README_IMAGES / "overview.png")
    shutil.copyfile(inbox, README_IMAGES / "inbox.png")
