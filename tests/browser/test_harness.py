"""The checks the page tests rely on can fail: axe reports a page's serious violations, and the
loopback guard refuses (and records) a request for anything beyond 127.0.0.1."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.browser.browsing import LocalOnly, axe_violations

pytestmark = pytest.mark.browser

_TITLE = '<!doctype html><html lang="en"><head><title>t</title></head><body><main><h1>t</h1>'
_END = "</main></body></html>"


def test_axe_passes_a_clean_page_and_names_what_is_wrong_with_a_bad_one(chromium: Browser) -> None:
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.set_content(_TITLE + '<label for="u">Username</label><input id="u"><button>Go</button>' + _END)
        assert axe_violations(page) == []
        page.set_content(_TITLE + '<img src="data:,"><input id="u"><p style="color:#ccc">faint</p>' + _END)
        found = {v["id"]: v for v in axe_violations(page)}
        assert {"image-alt", "label", "color-contrast"} <= set(found)
        assert found["label"]["targets"] == ["#u"]
    finally:
        context.close()


def test_the_guard_refuses_every_request_beyond_loopback(chromium: Browser) -> None:
    context = chromium.new_context()
    guard = LocalOnly()
    guard.install(context)
    try:
        page = context.new_page()
        page.set_content(_TITLE + '<script src="http://localhost:9/cdn/plotly.min.js"></script>' + _END)
        assert guard.refused == ["http://localhost:9/cdn/plotly.min.js"]
    finally:
        context.close()
