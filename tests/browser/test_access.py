"""Who may open what, as a person in a browser finds it: the login form, each role's home page, the
pages refused to a role (403 page), and care data never reaching highways anywhere: not in a page,
not in its source, not in a fragment the page polls, not in an export it links to."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser import world as seeded
from tests.browser.browsing import crawl, login, without_tokens

pytestmark = pytest.mark.browser

GULLY = f"/gullies/{seeded.FLOODING}"
FLAT_PAGE = f"/care/flats/{seeded.FLAT}"


def _path(page: Page) -> str:
    parts = urlsplit(page.url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.mark.parametrize(("role", "home"), [("admin", "/overview"), ("highways", "/overview"), ("care", "/inbox")])
def test_each_role_logs_in_with_the_form_and_lands_on_its_home_page(page: Page, role: str, home: str) -> None:
    login(page, role)
    assert _path(page) == home
    page.goto("/")
    assert _path(page) == home
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_a_wrong_password_stays_on_the_form_and_says_so(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill("care")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    assert urlsplit(page.url).path == "/login"
    page.goto("/inbox")
    assert urlsplit(page.url).path == "/login"  # no session came of it


def test_a_page_without_a_session_sends_the_person_to_log_in_and_back(page: Page) -> None:
    for path in ("/overview", f"{GULLY}?range=7d", "/inbox", "/network"):
        page.context.clear_cookies()
        page.goto(path)
        assert urlsplit(page.url).path == "/login", path
        assert "next=" in _path(page), page.url
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill("correct horse battery staple")
        with page.expect_navigation():
            page.get_by_role("button", name="Log in").click()
        assert _path(page) == path


def test_logging_out_ends_the_session(page: Page) -> None:
    login(page, "highways", then="/network")
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()
    assert urlsplit(page.url).path == "/login"
    page.goto("/overview")
    assert urlsplit(page.url).path == "/login"


def test_care_cannot_open_the_flood_pages_nor_the_dead_letters(page: Page) -> None:
    login(page, "care", then="/care")
    for path in ("/overview", "/overview/live", GULLY, f"{GULLY}?range=1y", "/network/dead-letters"):
        response = page.goto(path)
        assert response is not None and response.status == 403, f"{path}: {response and response.status}"
        content = page.content()
        assert seeded.GULLIES[seeded.FLOODING][0] not in content and seeded.DEAD_REASON not in content, path


def test_highways_cannot_open_the_dead_letters_nor_the_care_pages(page: Page) -> None:
    login(page, "highways", then="/network")
    response = page.goto("/network/dead-letters")
    assert response is not None and response.status == 403
    assert seeded.DEAD_REASON not in page.content()
    for path in ("/care", FLAT_PAGE):
        response = page.goto(path)
        assert response is not None and response.status in (403, 404), f"{path}: {response and response.status}"
        assert seeded.CARE_MARKER not in without_tokens(page.content()).lower()


def test_admin_reads_the_dead_letters_with_their_reasons(page: Page) -> None:
    login(page, "admin", then="/network/dead-letters")
    response = page.reload()
    assert response is not None and response.status == 200
    row = page.get_by_role("row").filter(has_text=seeded.DEAD_REASON)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("json")  # the stage it was refused at


def test_highways_never_sees_a_care_device_or_flat_anywhere(page: Page) -> None:
    login(page, "highways", then="/network")
    start = ("/", "/overview", "/overview/live", "/inbox", "/inbox/live", "/network",
             *(f"/network/gateways/{g}" for g in (seeded.TOWN_GATEWAY, seeded.NORTH_GATEWAY)),
             *(f"/gullies/{g}" for g in seeded.GULLIES))  # fmt: skip
    fetched = crawl(page, start)
    ok = {p: f for p, f in fetched.items() if f.status == 200}
    assert {"/overview", "/overview/live", "/inbox", "/inbox/live", "/network"} <= set(ok), sorted(fetched)
    everything = "\n".join(f.body for f in fetched.values()).lower()
    for gully in seeded.GULLIES:  # the crawl did reach the gullies ...
        assert gully in everything
    marker = seeded.CARE_MARKER
    bodies = {p: without_tokens(f.body).lower() for p, f in fetched.items()}
    leaks = {p: body.count(marker) for p, body in bodies.items() if marker in body}
    assert not leaks, f"care identifiers shown to highways: {leaks}"  # ... and never a care sensor or flat
    for word in ("fall", "inactivity"):  # nor a care alert, by its category
        shown = [p for p, f in ok.items() if p.startswith("/inbox") and f'data-category="{word}"' in f.body]
        assert not shown, f"{word} alerts in highways' inbox: {shown}"
    # what the browser rendered (after its scripts ran and the fragments were swapped in) too
    for path in ("/overview", "/inbox", "/network"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert seeded.CARE_MARKER not in without_tokens(page.content()).lower(), path


def test_care_sees_its_flat_and_falls_but_no_gully(page: Page) -> None:
    login(page, "care", then="/care")
    fetched = crawl(page, ("/", "/inbox", "/inbox/live", "/care", FLAT_PAGE, "/network"))
    ok = {p for p, f in fetched.items() if f.status == 200}
    assert {"/inbox", "/inbox/live", "/care", FLAT_PAGE, "/network"} <= ok, sorted(fetched)
    inbox = fetched["/inbox"].body
    assert seeded.CARE_MARKER in inbox.lower() and 'data-category="fall"' in inbox
    everything = "\n".join(f.body for f in fetched.values())
    shown = [g for g in seeded.GULLIES if g in everything or seeded.GULLIES[g][0] in everything]
    assert not shown, f"gullies shown to care: {shown}"


def test_admin_sees_both_fleets_in_the_inbox(page: Page) -> None:
    login(page, "admin", then="/inbox")
    main = page.get_by_role("main")
    expect(main).to_contain_text(seeded.GULLIES[seeded.FLOODING][0])
    expect(main.get_by_role("listitem").filter(has_text="Fall").first).to_be_visible()


@pytest.mark.parametrize("role", ["admin", "highways", "care"])
def test_no_link_on_a_roles_pages_leads_it_to_an_error(page: Page, role: str) -> None:
    login(page, role, then="/network")
    fetched = crawl(page, ("/", "/network"))
    assert len(fetched) >= 5, sorted(fetched)
    broken = {p: f.status for p, f in fetched.items() if f.status != 200}
    assert not broken, f"pages {role} is linked to but cannot open: {broken}"
