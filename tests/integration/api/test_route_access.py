"""Who may call what, for every route at once: each operation of the OpenAPI document (and the routes
kept out of it on purpose) is called with no credentials and with each role's API token, and the
outcome is judged against ONE table, `ACCESS`. A route without an entry, or an entry without a route,
fails the test, so a new route cannot ship without someone deciding who may call it.

The point is authorisation, not validity: an allowed role must get past authentication and the role
check (never 401/403; where the test can seed a real target, the route's success status), a role not
allowed gets 403 `forbidden`, nobody without credentials gets past 401 except on public routes."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import psycopg
import pytest

from dashboard.app import create_app
from dashboard.config import ApiSettings
from dashboard.tokens import SESSION_COOKIE
from store import alerts as db
from store.records import DeadLetter
from store.writer import IngestWriter
from tests.integration.api.conftest import PASSWORD, bearer
from tests.integration.api.seed_devices import register, uplinks
from tests.integration.api.test_alerts_api import seed

ROLES = ("admin", "highways", "care")
ALL = frozenset(ROLES)
ADMIN_ONLY = frozenset({"admin"})
#: No credentials needed (they say nothing about data, or they are how one gets credentials).
PUBLIC: Literal["public"] = "public"
#: Ends a session: any role, but only with a session cookie (an API token is refused with 403).
SESSION_ONLY: Literal["session"] = "session"
Access = frozenset[str] | Literal["public", "session"]

#: THE table: who may call each (method, path template).
ACCESS: dict[tuple[str, str], Access] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/docs"): PUBLIC,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): SESSION_ONLY,
    ("GET", "/api/v1/auth/me"): ALL,
    ("GET", "/api/v1/devices"): ALL,
    ("POST", "/api/v1/devices"): ADMIN_ONLY,
    ("GET", "/api/v1/devices/export"): ALL,
    ("POST", "/api/v1/devices/import"): ADMIN_ONLY,
    ("GET", "/api/v1/devices/{device_id}"): ALL,
    ("PATCH", "/api/v1/devices/{device_id}"): ADMIN_ONLY,
    ("DELETE", "/api/v1/devices/{device_id}"): ADMIN_ONLY,
    ("GET", "/api/v1/devices/{device_id}/readings"): ALL,
    ("GET", "/api/v1/devices/{device_id}/readings.csv"): ALL,
    ("GET", "/api/v1/devices/{device_id}/health"): ALL,
    ("GET", "/api/v1/gateways"): ALL,
    ("GET", "/api/v1/gateways/{gateway_id}"): ALL,
    ("GET", "/api/v1/alerts"): ALL,
    ("GET", "/api/v1/alerts/{alert_id}"): ALL,
    ("POST", "/api/v1/alerts/{alert_id}/ack"): ALL,
    ("POST", "/api/v1/alerts/{alert_id}/assign"): ALL,
    ("POST", "/api/v1/alerts/{alert_id}/note"): ALL,
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): ALL,
    ("GET", "/api/v1/silences"): ALL,
    ("POST", "/api/v1/silences"): ALL,
    ("POST", "/api/v1/silences/{silence_id}/expire"): ALL,
    ("GET", "/api/v1/rules"): ALL,
    ("POST", "/api/v1/rules/check"): ALL,
    ("GET", "/api/v1/dead-letters"): ADMIN_ONLY,
    ("GET", "/api/v1/dead-letters/{dead_letter_id}"): ADMIN_ONLY,
    ("GET", "/api/v1/audit"): ADMIN_ONLY,
}

#: Routes served but kept out of the OpenAPI document on purpose (the document itself, its viewer and
#: the Prometheus text). They are in the walk too; being PUBLIC, each must answer 2xx, so an entry
#: for a route that is gone fails.
UNDOCUMENTED = frozenset({("GET", "/metrics"), ("GET", "/api/v1/openapi.json"), ("GET", "/api/v1/docs")})

CSV = {"Content-Type": "text/csv"}
YAML = {"Content-Type": "application/yaml"}


def operations() -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation in the OpenAPI document, plus UNDOCUMENTED."""
    document = create_app(ApiSettings.for_openapi()).openapi()
    found = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    return found | UNDOCUMENTED


@dataclass
class Request:
    """One call: body, query and headers, and the statuses an allowed caller must get (None: anything
    but 401/403, for a route the test has no seeded target or valid body for)."""

    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    content: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    ok: frozenset[int] | None = frozenset({200})


class World:
    """What the calls need to succeed: a gully and a care device heard via gw-1 with readings, a dead
    letter, and fresh targets (an alert, a silence, a deletable device) made per call, so that a call
    that acts on its target (resolve, expire, DELETE) never spoils the next one."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.serial = itertools.count(1)
        now = datetime.now(UTC).replace(microsecond=0)
        register(db_url, "gully-1,app,gully,Gully one,1500,300,,\ncare-1,app,care,Flat 4,,,bedroom,flat-4\n")
        times = [now - timedelta(minutes=30), now - timedelta(minutes=15)]
        uplinks(db_url, "gully-1", times, readings=[{"distance_mm": 900.0}] * 2)
        uplinks(db_url, "care-1", times, readings=[{"battery_v": 3.5}] * 2)
        with psycopg.connect(db_url) as conn:
            letter = DeadLetter(now, "json", "json refused", None, "t/json", None, b"{broken")
            IngestWriter(conn).write([], [letter])
            row = conn.execute("SELECT max(id) FROM dead_letters").fetchone()
        assert row is not None
        self.dead_letter_id = int(row[0])
        self.alert_id = self.fresh_alert()

    def fresh_alert(self) -> int:
        """A firing gateway alert: every role can see those, so every role can act on it."""
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            return seed(conn, None, category="gateway_offline", rule=f"gw-down-{next(self.serial)}").id

    def fresh_silence(self) -> int:
        """An active silence pinned to gateways, which every role may see and expire."""
        now = datetime.now(UTC)
        with psycopg.connect(self.db_url) as conn:
            return db.add_silence(
                conn, {"kind": "gateway"}, now - timedelta(minutes=1), now + timedelta(hours=1), "t", ""
            )

    def fresh_device(self) -> str:
        """A gully never heard from, so a DELETE of it succeeds."""
        name = f"spare-{next(self.serial)}"
        register(self.db_url, f"{name},app,gully,,,,,\n")
        return name

    def path_value(self, name: str, method: str, role: str | None) -> str | None:
        """A value for path parameter `name` that the role can see (None: the test cannot fill it)."""
        if name == "device_id":
            if method == "DELETE":
                return self.fresh_device()
            return "care-1" if role == "care" else "gully-1"
        if name == "alert_id":
            return str(self.alert_id if method == "GET" else self.fresh_alert())
        if name == "silence_id":
            return str(self.fresh_silence())
        if name == "dead_letter_id":
            return str(self.dead_letter_id)
        if name == "gateway_id":
            return "gw-1"
        return None

    def request(self, method: str, path: str, role: str | None) -> Request:
        """The body and expectations of one call by `role` (None: no credentials)."""
        n = next(self.serial)
        user = role or "admin"
        known: dict[tuple[str, str], Callable[[], Request]] = {
            ("POST", "/api/v1/auth/login"): lambda: Request(json={"username": user, "password": PASSWORD}),
            ("POST", "/api/v1/devices"): lambda: Request(
                json={"device_id": f"made-{n}", "application_id": "app", "kind": "gully"}, ok=frozenset({201})
            ),
            ("POST", "/api/v1/devices/import"): lambda: Request(
                params={"dry_run": "true"}, content=f"device_id,application_id,kind\nimp-{n},app,gully\n", headers=CSV
            ),
            ("PATCH", "/api/v1/devices/{device_id}"): lambda: Request(json={"name": f"renamed {n}"}),
            ("DELETE", "/api/v1/devices/{device_id}"): lambda: Request(ok=frozenset({204})),
            ("POST", "/api/v1/alerts/{alert_id}/ack"): lambda: Request(json={"note": "on it"}),
            ("POST", "/api/v1/alerts/{alert_id}/assign"): lambda: Request(json={"assignee": "Sam"}),
            ("POST", "/api/v1/alerts/{alert_id}/note"): lambda: Request(json={"text": "checked"}),
            ("POST", "/api/v1/alerts/{alert_id}/resolve"): lambda: Request(json={"note": "fixed"}),
            ("POST", "/api/v1/silences"): lambda: Request(json={"matchers": {"kind": "gateway"}}, ok=frozenset({201})),
            ("POST", "/api/v1/rules/check"): lambda: Request(content="version: 1\nrules: []\n", headers=YAML),
        }
        if (method, path) in known:
            return known[(method, path)]()
        if method == "GET":
            return Request()
        return Request(json={}, ok=None)  # a route this test does not know yet: any body, authorisation only


def error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def judge(access: Access, role: str | None, request: Request, response: httpx.Response) -> str | None:
    """What is wrong with this outcome, or None."""
    status, code = response.status_code, error_code(response)
    if access == PUBLIC:
        ok = request.ok or frozenset(range(200, 300))
        return None if status in ok else f"public route answered {status} ({code}), wanted {sorted(ok)}"
    if role is None:
        if status != 401 or code != "unauthenticated" or response.headers.get("www-authenticate") != "Bearer":
            return f"no credentials got {status} ({code}), wanted 401 unauthenticated with WWW-Authenticate"
        return None
    if access == SESSION_ONLY:
        return None if (status, code) == (403, "not_a_session") else f"got {status} ({code}), wanted 403 not_a_session"
    assert isinstance(access, frozenset)
    if role not in access:
        return None if (status, code) == (403, "forbidden") else f"not allowed but got {status} ({code}), wanted 403"
    if status in (401, 403):
        return f"allowed but got {status} ({code})"
    if status >= 500:
        return f"allowed but got a server error {status}"
    if request.ok is not None and status not in request.ok:
        return f"allowed but got {status} ({code}): {response.text[:200]}, wanted {sorted(request.ok)}"
    return None


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    yield World(db_url)


def test_the_access_table_names_every_route_and_only_routes() -> None:
    """A new route must get an entry (who may call it is a decision), and a removed one must lose it."""
    ops = operations()
    missing = sorted(ops - ACCESS.keys())
    stale = sorted(ACCESS.keys() - ops)
    assert not missing, f"routes with no entry in ACCESS (decide who may call them): {missing}"
    assert not stale, f"ACCESS entries with no such route: {stale}"


def test_every_route_answers_each_caller_as_the_table_says(
    api: str, people: dict[str, str], world: World, db_url: str
) -> None:
    """Every operation x {no credentials, admin, highways, care}; all mismatches reported together."""
    ops = operations()
    problems = [f"{m} {p}: no entry in ACCESS" for m, p in sorted(ops - ACCESS.keys())]
    problems += [f"{m} {p}: in ACCESS but no such route" for m, p in sorted(ACCESS.keys() - ops)]
    with httpx.Client(base_url=api, timeout=30) as client:
        for method, path in sorted(ops & ACCESS.keys()):
            for role in (None, *ROLES):
                who = role or "anonymous"
                url = path
                unfilled = False
                for name in (part[1:-1] for part in path.split("/") if part.startswith("{")):
                    value = world.path_value(name, method, role)
                    if value is None:
                        problems.append(f"{method} {path}: the test does not know how to fill {{{name}}}")
                        unfilled = True
                        break
                    url = url.replace(f"{{{name}}}", value)
                if unfilled:
                    break
                request = world.request(method, path, role)
                headers = {**request.headers, **(bearer(people[role]) if role else {})}
                response = client.request(
                    method, url, params=request.params, json=request.json, content=request.content, headers=headers
                )
                client.cookies.clear()  # a login's cookie must not authenticate the next call
                problem = judge(ACCESS[(method, path)], role, request, response)
                if problem:
                    problems.append(f"{method} {path} as {who}: {problem}")
        # Logout is for sessions: each role's own session ends with a 204 (cookie and CSRF token).
        for role in ROLES:
            login = client.post("/api/v1/auth/login", json={"username": role, "password": PASSWORD})
            assert login.status_code == 200, login.text
            session = login.cookies[SESSION_COOKIE]
            client.cookies.clear()
            headers = {"X-CSRF-Token": login.json()["csrf_token"], "Cookie": f"{SESSION_COOKIE}={session}"}
            out = client.post("/api/v1/auth/logout", headers=headers)
            if out.status_code != 204:
                problems.append(f"POST /api/v1/auth/logout as {role} with its session: {out.status_code} {out.text}")
            client.cookies.clear()
    assert not problems, f"{len(problems)} outcomes differ from ACCESS:\n" + "\n".join(problems)
