"""The dashboard pages over HTTP, as each role: the login form, who may open which page, what each
page shows and never shows, the audit of care views, logout. (tests/browser drives the same pages in
a real browser: scripts, live refresh, accessibility.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from store import audit
from tests.integration.api.conftest import PASSWORD
from tests.integration.api.seed_devices import register, uplinks
from tests.integration.api.test_alerts_api import seed

NOW = datetime.now(UTC).replace(microsecond=0)
PAGES = ("/overview", "/overview/live", "/gullies/gully-1", "/gullies/gully-1?range=1y", "/inbox", "/inbox/live",
         "/care", "/care/flats/flat-a", "/network", "/network/gateways/gw-1", "/network/dead-letters")  # fmt: skip
#: Which role may open which page (every other role gets 403).
ALLOWED = {
    "/overview": {"admin", "highways"},
    "/overview/live": {"admin", "highways"},
    "/gullies/gully-1": {"admin", "highways"},
    "/gullies/gully-1?range=1y": {"admin", "highways"},
    "/inbox": {"admin", "highways", "care"},
    "/inbox/live": {"admin", "highways", "care"},
    "/care": {"admin", "care"},
    "/care/flats/flat-a": {"admin", "care"},
    "/network": {"admin", "highways", "care"},
    "/network/gateways/gw-1": {"admin", "highways", "care"},
    "/network/dead-letters": {"admin"},
}
CARE_MARKS = ("radar-1", "flat-a", "bedroom")


@pytest.fixture
def world(db_url: str, people: dict[str, str]) -> Iterator[None]:
    register(
        db_url,
        "gully-1,app,gully,Mill Lane,1000,400,,\nradar-1,app,care,,,,bedroom,flat-a\n",
    )
    times = [NOW - timedelta(minutes=15 * i) for i in range(8, 0, -1)]
    uplinks(db_url, "gully-1", times, readings=[{"distance_mm": 600.0 - 10 * i, "battery_v": 3.6} for i in range(8)])
    uplinks(db_url, "radar-1", times, readings=[{"occupied": True} for _ in range(8)])
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE devices SET latitude = 51.45, longitude = -2.58 WHERE device_id = 'gully-1'")
        seed(conn, "gully-1", category="flood", at=NOW - timedelta(minutes=30))
        seed(conn, "radar-1", category="fall", at=NOW - timedelta(minutes=20))
    yield


_open: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def client_for(api: str) -> httpx.Client:
    client = httpx.Client(base_url=api, follow_redirects=False)
    _open.append(client)
    return client


def login(api: str, role: str) -> httpx.Client:
    client = client_for(api)
    r = client.post("/login", data={"username": role, "password": PASSWORD, "next": ""})
    assert r.status_code == 303, r.text
    return client


def test_a_page_without_a_session_sends_the_person_to_the_login_form_and_back(api: str, world: None) -> None:
    r = httpx.get(f"{api}/gullies/gully-1?range=7d", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/gullies/gully-1%3Frange%3D7d"
    form = httpx.get(f"{api}{r.headers['location']}")
    assert form.status_code == 200 and 'name="next" value="/gullies/gully-1?range=7d"' in form.text
    client = client_for(api)
    data = {"username": "highways", "password": PASSWORD, "next": "/gullies/gully-1?range=7d"}
    done = client.post("/login", data=data)
    assert done.status_code == 303 and done.headers["location"] == "/gullies/gully-1?range=7d"
    assert client.get("/gullies/gully-1?range=7d").status_code == 200


@pytest.mark.parametrize(("role", "home"), [("care", "/inbox"), ("highways", "/overview"), ("admin", "/overview")])
def test_each_role_lands_on_its_home_page(api: str, world: None, role: str, home: str) -> None:
    client = client_for(api)
    r = client.post("/login", data={"username": role, "password": PASSWORD})
    assert r.headers["location"] == home
    assert client.get("/").headers["location"] == home


def test_a_wrong_password_is_refused_with_a_clear_message_and_no_cookie(api: str, world: None) -> None:
    r = httpx.post(f"{api}/login", data={"username": "care", "password": "nope"}, follow_redirects=False)
    assert r.status_code == 401
    assert "do not match" in r.text and "set-cookie" not in r.headers
    blank = httpx.post(f"{api}/login", data={"username": "care", "password": ""}, follow_redirects=False)
    assert blank.status_code == 401 and "Enter your username and password" in blank.text


def test_login_never_redirects_off_the_site(api: str, world: None) -> None:
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        r = httpx.post(f"{api}/login", data={"username": "care", "password": PASSWORD, "next": evil},
                       follow_redirects=False)  # fmt: skip
        assert r.headers["location"] == "/inbox", evil


def test_a_login_form_posted_from_another_site_is_refused(api: str, world: None) -> None:
    r = httpx.post(f"{api}/login", data={"username": "care", "password": PASSWORD},
                   headers={"Origin": "https://evil.example"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 403 and "set-cookie" not in r.headers


@pytest.mark.parametrize("role", ["admin", "highways", "care"])
def test_each_role_opens_exactly_its_pages_and_highways_never_sees_care_data(api: str, world: None, role: str) -> None:
    client = login(api, role)
    for path in PAGES:
        r = client.get(path)
        expected = 200 if role in ALLOWED[path] else 403
        assert r.status_code == expected, (role, path, r.status_code, r.text[:300])
        assert "text/html" in r.headers["content-type"]
        if role == "highways":
            leaked = [m for m in CARE_MARKS if m in r.text]
            assert not leaked, (path, leaked)


def test_the_pages_show_what_each_role_looks_after(api: str, world: None) -> None:
    highways, care = login(api, "highways"), login(api, "care")
    overview = highways.get("/overview").text
    assert "Mill Lane" in overview and "/gullies/gully-1" in overview
    assert re.search(r'data-device="gully-1" data-state="(warning|flooding)"', overview), "the open flood alert"
    assert "flood" in highways.get("/inbox").text
    inbox = care.get("/inbox").text
    assert 'data-category="fall"' in inbox and "Flat flat-a" in inbox and "bedroom" in inbox
    assert "Mill Lane" not in inbox and "gully-1" not in inbox
    flat = care.get("/care/flats/flat-a").text
    assert "bedroom" in flat and "Activity by hour of day" in flat
    assert care.get("/care/flats/nobody").status_code == 404
    assert highways.get("/gullies/radar-1").status_code == 404  # a care device is no gully of theirs


def test_a_gully_page_offers_every_range_and_the_csv_of_what_it_shows(api: str, world: None) -> None:
    client = login(api, "highways")
    for key in ("6h", "24h", "7d", "30d", "1y"):
        r = client.get(f"/gullies/gully-1?range={key}")
        assert r.status_code == 200, key
        csv_url = re.search(r'href="(/api/v1/devices/gully-1/readings\.csv\?[^"]+)"', r.text)
        assert csv_url, key
        exported = client.get(csv_url.group(1).replace("&amp;", "&"))
        assert exported.status_code == 200 and exported.text.count("\n") >= 2, (key, exported.text[:200])
    assert client.get("/gullies/gully-1?range=2y").status_code == 422


def test_care_views_are_audited_with_ids_only(api: str, world: None, db_url: str) -> None:
    client = login(api, "care")
    client.get("/care/flats/flat-a")
    client.get("/inbox")
    with psycopg.connect(db_url) as conn:
        actions = {(e.action, e.actor) for e in audit.entries(conn, limit=100)}
    assert ("care_flat_viewed", "care") in actions
    assert ("care_alerts_listed", "care") in actions


def test_logout_needs_the_pages_token_and_ends_the_session(api: str, world: None) -> None:
    client = login(api, "admin")
    page = client.get("/network").text
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert token
    assert client.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    assert client.get("/network").status_code == 200
    r = client.post("/logout", data={"csrf_token": token.group(1)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/network").status_code == 303  # the session is gone


def test_plotly_is_served_from_the_installed_package_and_pages_stay_out_of_the_openapi(api: str) -> None:
    js = httpx.get(f"{api}/static/plotly.min.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and len(js.content) > 1_000_000
    paths = httpx.get(f"{api}/api/v1/openapi.json").json()["paths"]
    assert not [p for p in paths if not p.startswith(("/api/v1/", "/healthz", "/readyz"))]
