"""Login, sessions, CSRF, rate limits, API tokens and the audit route, over real HTTP against a live
uvicorn server on the real database."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from dashboard.app import create_app
from dashboard.deps import Acting
from dashboard.errors import ApiError
from dashboard.tokens import CSRF_HEADER, SESSION_COOKIE
from store import audit, users
from tests.integration.api.conftest import PASSWORD, add_token, add_user, bearer, running, settings_for

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
AUDIT = "/api/v1/audit"
JSON = {"Content-Type": "application/json"}


def login(client: httpx.Client, name: str, password: str = PASSWORD, **kw: object) -> httpx.Response:
    return client.post(LOGIN, json={"username": name, "password": password}, **kw)  # type: ignore[arg-type]


def actions(db_url: str) -> list[tuple[str, str, dict[str, object]]]:
    with psycopg.connect(db_url) as conn:
        return [(e.actor, e.action, e.detail) for e in reversed(audit.entries(conn, limit=1000))]


def error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str)
    return response.status_code, body["error"]["code"]


# --- health and metrics -----------------------------------------------------------------------------


def test_health_ready_and_metrics(api: str, people: dict[str, str]) -> None:
    with httpx.Client(base_url=api) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}
        client.get(AUDIT, params={"cursor": "c2VjcmV0LXRoaW5n"}, headers=bearer(people["admin"]))
        client.get("/no/such/path/12345")
        text = client.get("/metrics").text
    assert 'route="/api/v1/audit",status="400"' in text
    assert 'route="(unmatched)",status="404"' in text
    assert "12345" not in text and "c2VjcmV0" not in text  # labels are route templates, never raw paths
    assert "/metrics" not in str(create_app(settings_for("")).openapi()["paths"])


def test_readyz_says_when_the_database_is_gone(api_db_url: str, db_url: str) -> None:
    with running(create_app(settings_for(api_db_url))) as server, httpx.Client() as client:
        url = f"http://127.0.0.1:{server.config.port}"
        assert client.get(url + "/readyz").status_code == 200
        with psycopg.connect(db_url, autocommit=True) as owner:  # end the pool's connections
            owner.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'lorawatch_api'")
        # The pool checks each connection it hands out, so the next request gets a fresh one.
        assert client.get(url + "/readyz").status_code == 200


def test_refuses_to_serve_through_a_role_that_bypasses_rls(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), running(create_app(settings_for(db_url))) as server:
        assert not server.started
    assert "refusing to serve" in caplog.text and "superuser" in caplog.text


# --- login and sessions -----------------------------------------------------------------------------


def test_login_sets_a_session_cookie_and_me_shows_the_csrf_token(api: str, db_url: str) -> None:
    add_user(db_url, "alice", "highways")
    with httpx.Client(base_url=api) as client:
        response = login(client, "  Alice ")
        assert response.status_code == 200
        body = response.json()
        assert (body["username"], body["role"]) == ("alice", "highways")
        cookie = response.headers["set-cookie"]
        attrs = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "path", "max-age", "samesite"} <= attrs and "secure" not in attrs  # plain http
        assert "samesite=lax" in cookie.lower()
        me = client.get(ME).json()
    assert me == {
        "username": "alice",
        "role": "highways",
        "auth": "session",
        "csrf_token": body["csrf_token"],
        "expires_at": body["expires_at"],
    }
    assert actions(db_url)[-1][:2] == ("alice", "login")
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT token_hash, csrf_token FROM sessions").fetchall()
    session = client.cookies.get(SESSION_COOKIE) or ""
    assert len(stored) == 1 and session and session.encode() not in bytes(stored[0][0])  # only its hash


def test_secure_cookie_when_configured(serve: Callable[..., str], db_url: str) -> None:
    add_user(db_url, "alice", "care")
    with httpx.Client(base_url=serve(cookie_secure=True)) as client:
        cookie = login(client, "alice").headers["set-cookie"]
    assert "secure" in {p.strip().lower() for p in cookie.split(";")}


def test_failed_logins_look_the_same_whatever_the_reason(api: str, db_url: str) -> None:
    add_user(db_url, "alice", "admin")
    add_user(db_url, "dora", "admin", disabled=True)
    with httpx.Client(base_url=api) as client:
        answers = [
            login(client, "alice", "not the password at all"),
            login(client, "nobody-here", PASSWORD),
            login(client, "dora", PASSWORD),  # disabled, right password
            login(client, "Not A Valid Name!", PASSWORD),
            # What the database cannot store (NUL, control characters) is still just a failed login:
            client.post(LOGIN, content=b'{"username": "\\u0000x\\u0007", "password": "p"}', headers=JSON),
        ]
    assert {(r.status_code, r.text) for r in answers} == {
        (401, '{"error":{"code":"unauthenticated","message":"invalid username or password"}}')
    }
    assert not any(SESSION_COOKIE in r.headers.get("set-cookie", "") for r in answers)
    reasons = [(actor, detail) for actor, action, detail in actions(db_url) if action == "login_failed"]
    assert reasons == [
        ("alice", {"reason": "wrong_password"}),
        ("nobody-here", {"reason": "unknown_user"}),
        ("dora", {"reason": "disabled"}),
        ("not a valid name!", {"reason": "unknown_user"}),
        ("\ufffdx\ufffd", {"reason": "unknown_user"}),
    ]


def test_login_is_rate_limited_per_user_before_any_hashing(serve: Callable[..., str], db_url: str) -> None:
    add_user(db_url, "alice", "admin")
    api = serve(login_max_failures=3, login_window_s=2)
    with httpx.Client(base_url=api) as client:
        for _ in range(3):
            assert login(client, "alice", "wrong password!!").status_code == 401
            assert login(client, "ghost", "wrong password!!").status_code == 401  # unknown users alike
        refused = login(client, "alice")  # even the right password
        assert error(refused) == (429, "rate_limited")
        assert 1 <= int(refused.headers["Retry-After"]) <= 2
        assert error(login(client, "ghost")) == (429, "rate_limited")  # no way to tell who exists
        time.sleep(2.1)
        assert login(client, "alice").status_code == 200
    recorded = [(actor, action) for actor, action, _ in actions(db_url)]
    assert ("alice", "login_refused") in recorded and ("ghost", "login_refused") in recorded
    assert recorded[-1] == ("alice", "login")


def test_login_is_rate_limited_per_address(serve: Callable[..., str], db_url: str) -> None:
    add_user(db_url, "alice", "admin")
    api = serve(login_max_failures=100, login_max_failures_per_ip=4)
    with httpx.Client(base_url=api) as client:
        for n in range(4):
            assert login(client, f"guess-{n}", "wrong password!!").status_code == 401
        assert error(login(client, "alice")) == (429, "rate_limited")


def test_logout_needs_the_csrf_token_and_ends_the_session(api: str, db_url: str) -> None:
    add_user(db_url, "alice", "care")
    with httpx.Client(base_url=api) as client:
        csrf = login(client, "alice").json()["csrf_token"]
        session = client.cookies.get(SESSION_COOKIE)
        assert error(client.post(LOGOUT)) == (403, "csrf_failed")
        assert error(client.post(LOGOUT, headers={CSRF_HEADER: csrf[:-1] + "x"})) == (403, "csrf_failed")
        cross = {CSRF_HEADER: csrf, "Origin": "https://evil.example"}
        assert error(client.post(LOGOUT, headers=cross)) == (403, "cross_origin")
        assert error(client.post(LOGOUT, headers={CSRF_HEADER: csrf, "Sec-Fetch-Site": "cross-site"})) == (
            403,
            "cross_origin",
        )
        assert client.get(ME).status_code == 200  # none of that ended it
        same = {CSRF_HEADER: csrf, "Origin": api}
        response = client.post(LOGOUT, headers=same)
        assert response.status_code == 204
        assert (
            SESSION_COOKIE in response.headers["set-cookie"] and "max-age=0" in response.headers["set-cookie"].lower()
        )
    with httpx.Client(base_url=api, cookies={SESSION_COOKIE: session or ""}) as replay:
        assert error(replay.get(ME)) == (401, "unauthenticated")  # the old cookie is dead server-side
    assert actions(db_url)[-1][:2] == ("alice", "logout")


def test_cross_site_login_is_refused(serve: Callable[..., str], db_url: str) -> None:
    add_user(db_url, "alice", "care")
    api = serve(allowed_origins=("https://dashboard.example",))
    with httpx.Client(base_url=api) as client:
        assert error(login(client, "alice", headers={"Origin": "https://evil.example"})) == (403, "cross_origin")
        assert login(client, "alice", headers={"Origin": "https://dashboard.example"}).status_code == 200


def test_password_change_and_disabling_end_sessions(api: str, db_url: str) -> None:
    add_user(db_url, "alice", "care")
    add_user(db_url, "bob", "care")
    with httpx.Client(base_url=api) as a, httpx.Client(base_url=api) as b:
        login(a, "alice")
        login(b, "bob")
        with psycopg.connect(db_url) as conn:
            users.set_password(conn, "alice", "new-hash-not-used")
            users.set_disabled(conn, "bob", True)
        assert error(a.get(ME)) == (401, "unauthenticated")
        assert error(b.get(ME)) == (401, "unauthenticated")


def test_expired_session_is_refused(serve: Callable[..., str], db_url: str) -> None:
    add_user(db_url, "alice", "care")
    with httpx.Client(base_url=serve(session_ttl_s=1)) as client:
        login(client, "alice")
        with psycopg.connect(db_url) as conn:
            conn.execute("UPDATE sessions SET expires_at = now() - interval '1 second'")
        assert error(client.get(ME)) == (401, "unauthenticated")


def test_rehashes_a_password_stored_with_other_parameters(api: str, db_url: str) -> None:
    from dashboard.passwords import Passwords

    strong = Passwords("rfc9106-low-memory").hash(PASSWORD)
    with psycopg.connect(db_url) as conn:
        users.create_user(conn, "alice", "admin", strong)
    with httpx.Client(base_url=api) as client:
        assert login(client, "alice").status_code == 200
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT password_hash FROM users").fetchone()
    assert row is not None and row[0] != strong and Passwords("cheapest").verify(row[0], PASSWORD)


# --- API tokens -------------------------------------------------------------------------------------


def test_bearer_tokens_authenticate_are_csrf_exempt_and_revocable(api: str, db_url: str) -> None:
    add_user(db_url, "robot", "highways")
    token = add_token(db_url, "robot", "flood map")
    with httpx.Client(base_url=api) as client:
        me = client.get(ME, headers=bearer(token)).json()
        assert me == {"username": "robot", "role": "highways", "auth": "token", "csrf_token": None, "expires_at": None}
        # Unsafe method, no CSRF token, a foreign origin: not refused for CSRF (a bearer token is not ambient),
        # only because logout is for sessions.
        assert error(client.post(LOGOUT, headers={**bearer(token), "Origin": "https://x.example"})) == (
            403,
            "not_a_session",
        )
        token_id = token.split("_")[1]
        with psycopg.connect(db_url) as conn:
            assert conn.execute("SELECT last_used_at IS NOT NULL FROM api_tokens").fetchone() == (True,)
            users.revoke_token(conn, token_id)
        refused = client.get(ME, headers=bearer(token))
        assert error(refused) == (401, "unauthenticated") and refused.headers["WWW-Authenticate"] == "Bearer"
        for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), "lw_zz_yy", "not-a-token"):
            assert error(client.get(ME, headers=bearer(bad))) == (401, "unauthenticated")


def test_a_bad_bearer_token_never_falls_back_to_the_cookie(api: str, db_url: str) -> None:
    add_user(db_url, "alice", "admin")
    with httpx.Client(base_url=api) as client:
        login(client, "alice")
        assert client.get(ME).status_code == 200
        assert error(client.get(ME, headers=bearer("lw_00000000_" + "a" * 43))) == (401, "unauthenticated")


def test_disabled_users_tokens_are_refused(api: str, db_url: str) -> None:
    add_user(db_url, "robot", "care")
    token = add_token(db_url, "robot")
    with psycopg.connect(db_url) as conn:
        users.set_disabled(conn, "robot", True)
    with httpx.Client(base_url=api) as client:
        assert error(client.get(ME, headers=bearer(token))) == (401, "unauthenticated")
    with psycopg.connect(db_url) as conn:
        users.set_disabled(conn, "robot", False)
    with httpx.Client(base_url=api) as client:
        assert client.get(ME, headers=bearer(token)).status_code == 200


# --- errors -----------------------------------------------------------------------------------------


def test_unauthenticated_and_malformed_requests_get_json_errors(api: str, people: dict[str, str]) -> None:
    with httpx.Client(base_url=api) as client:
        for method, path in (("GET", ME), ("POST", LOGOUT), ("GET", AUDIT)):
            assert error(client.request(method, path)) == (401, "unauthenticated")
        assert error(client.post(LOGIN, content=b"{not json", headers={"Content-Type": "application/json"}))[0] in (
            400,
            422,
        )
        status, code = error(client.post(LOGIN, json={"username": "a", "password": 12345678901234}))
        assert (status, code) == (422, "invalid_request")
        refused = client.post(LOGIN, json={"username": ["x"], "password": "hunter2-hunter2"})
        assert "hunter2" not in refused.text  # validation errors never echo the input
        assert error(client.get("/api/v1/nothing-here")) == (404, "not_found")


# --- the audit route --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["highways", "care"])
def test_audit_is_admin_only(api: str, people: dict[str, str], role: str) -> None:
    with httpx.Client(base_url=api) as client:
        assert error(client.get(AUDIT, headers=bearer(people[role]))) == (403, "forbidden")


def test_audit_pages_by_cursor(api: str, db_url: str, people: dict[str, str]) -> None:
    with psycopg.connect(db_url) as conn:
        for n in range(7):
            audit.record(conn, actor=f"user-{n}", action="viewed", target=f"alert:{n}")
    seen: list[int] = []
    cursor = None
    with httpx.Client(base_url=api, headers=bearer(people["admin"])) as client:
        while True:
            params: dict[str, str | int] = {"limit": 3, "action": "viewed"}
            if cursor:
                params["cursor"] = cursor
            page = client.get(AUDIT, params=params).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 7 and seen == sorted(seen, reverse=True)  # newest first, each once
        everything = client.get(AUDIT, params={"limit": 500}).json()
        assert everything["next_cursor"] is None and len(everything["items"]) == 7
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert client.get(AUDIT, params={"since": later}).json() == {"items": [], "next_cursor": None}
        one = client.get(AUDIT, params={"actor": "user-3"}).json()["items"]
        assert [(i["actor"], i["target"]) for i in one] == [("user-3", "alert:3")]
        for bad in ({"limit": 0}, {"limit": 501}, {"since": "yesterday"}, {"since": "2026-01-01T00:00:00"}):
            assert error(client.get(AUDIT, params=bad)) == (422, "invalid_request")
        for cursor in ("%%%", "W10", "WyJ4Il0", "WzEsMl0", "Wzk5OTk5OTk5OTk5OTk5OTk5OTk5XQ"):
            assert error(client.get(AUDIT, params={"cursor": cursor})) == (400, "invalid_cursor")


# --- the request transaction ------------------------------------------------------------------------


def test_a_request_is_one_transaction_committed_before_the_response(api_db_url: str, db_url: str) -> None:
    """What part B's routes rely on: their writes are committed when the response arrives, rolled back
    when the route fails, and made as the user's role."""
    add_user(db_url, "alice", "care")
    token = add_token(db_url, "alice")
    app = create_app(settings_for(api_db_url))

    @app.post("/test/write")
    def write(ctx: Acting, fail: bool = False) -> dict[str, str]:
        audit.record(ctx.conn, actor=ctx.principal.username, action="test_write", detail={"fail": fail})
        role = ctx.conn.execute("SELECT current_user").fetchone()
        if fail:
            raise ApiError(404, "not_found", "no such thing")
        return {"role": str(role[0]) if role else ""}

    with running(app) as server, httpx.Client(base_url=f"http://127.0.0.1:{server.config.port}") as client:
        assert client.post("/test/write", headers=bearer(token)).json() == {"role": "lorawatch_care"}
        assert [a for _, a, _ in actions(db_url)] == ["test_write"]  # committed before the answer came
        assert error(client.post("/test/write", params={"fail": "true"}, headers=bearer(token))) == (404, "not_found")
    assert [(a, d) for _, a, d in actions(db_url)] == [("test_write", {"fail": False})]  # the failed one rolled back
