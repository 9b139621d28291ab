"""No password, token, session cookie or CSRF token ever reaches a log line: every record logged at
DEBUG (ours, uvicorn's, psycopg's) while logins, token use and the user commands run, rendered by
both of lorawatch's formatters, is searched for each secret."""

from __future__ import annotations

import io
import logging

import httpx
import psycopg
import pytest
from pythonjsonlogger.json import JsonFormatter

from dashboard.app import create_app
from dashboard.tokens import SESSION_COOKIE
from lorawatch import logging as lw_logging
from lorawatch.cli import main
from tests.integration.api.conftest import add_token, add_user, bearer, running, settings_for

SECRET_PASSWORD = "pw-Zq8vT3xLm9Rw"
WRONG_PASSWORD = "pw-wrong-Kd72HsQp"
CLI_PASSWORD = "pw-cli-Yh4Nc8Lb2Vx"
API_ROLE_PASSWORD = "pw-role-Ty6Wq1Zm5Ks"
#: Client-side libraries of the test itself, not of the server.
CLIENT_LOGGERS = ("httpx", "httpcore")


def rendered(records: list[logging.LogRecord]) -> str:
    text = lw_logging._TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    json = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    lines = []
    for record in records:
        if record.name.startswith(CLIENT_LOGGERS):
            continue
        lines += [text.format(record), json.format(record), repr(record.__dict__)]
    return "\n".join(lines)


def test_no_secret_reaches_a_log_line(
    api_db_url: str, db_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    for name in ("psycopg", "uvicorn", "dashboard", "store", "lorawatch"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    add_user(db_url, "alice", "admin", SECRET_PASSWORD)
    token = add_token(db_url, "alice")
    secrets = [SECRET_PASSWORD, WRONG_PASSWORD, CLI_PASSWORD, API_ROLE_PASSWORD, token, token.split("_", 2)[2]]
    app = create_app(settings_for(api_db_url, login_max_failures=2))
    with (
        running(app, log_level="debug") as server,
        httpx.Client(base_url=f"http://127.0.0.1:{server.config.port}") as c,
    ):
        assert server.started
        c.post("/api/v1/auth/login", json={"username": "alice", "password": WRONG_PASSWORD})
        c.post("/api/v1/auth/login", json={"username": "nobody", "password": SECRET_PASSWORD})
        c.post("/api/v1/auth/login", json={"username": "alice", "password": ["not", SECRET_PASSWORD]})  # 422
        ok = c.post("/api/v1/auth/login", json={"username": "alice", "password": SECRET_PASSWORD})
        assert ok.status_code == 200
        secrets += [c.cookies[SESSION_COOKIE], ok.json()["csrf_token"]]
        assert c.get("/api/v1/audit", headers=bearer(token)).status_code == 200
        c.get("/api/v1/auth/me", headers=bearer(token[:-2] + "xx"))
        c.post("/api/v1/auth/logout", headers={"X-CSRF-Token": ok.json()["csrf_token"]})
        for _ in range(3):  # into the rate limit
            c.post("/api/v1/auth/login", json={"username": "alice", "password": WRONG_PASSWORD})

    monkeypatch.setenv("LORAWATCH_DATABASE_URL", db_url)
    monkeypatch.setenv("LORAWATCH_PASSWORD_PROFILE", "cheapest")
    monkeypatch.setattr(lw_logging, "configure", lambda *a, **k: None)  # keep caplog's handler
    for argv, stdin in (
        (["users", "add", "carol", "--role", "care", "--password-stdin"], CLI_PASSWORD),
        (["users", "passwd", "carol", "--password-stdin"], CLI_PASSWORD + "-2"),
        (["users", "token", "create", "carol", "--name", "script"], ""),
        (["db", "api-password", "--password-stdin"], API_ROLE_PASSWORD),
    ):
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin + "\n"))
        assert main(argv) == 0
    (printed,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("lw_")]
    secrets.append(printed)
    with psycopg.connect(db_url) as conn:  # the cluster trusts loopback: leave the role as it was
        conn.execute("ALTER ROLE lorawatch_api PASSWORD NULL")

    logs = rendered(caplog.records)
    assert "login" in logs and "POST /api/v1/auth/login" in logs  # the capture works
    for secret in secrets:
        assert secret not in logs, "a secret reached the logs"
