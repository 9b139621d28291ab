"""`lorawatch users ...`, `lorawatch audit`, `lorawatch db api-password` and `lorawatch serve`,
through `lorawatch.cli.main` (and serve as its own process) against the real database."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import psycopg
import pytest

from dashboard.passwords import Passwords
from lorawatch.cli import main
from lorawatch.services import free_port
from store import users

PASSWORD = "a long enough password"


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LORAWATCH_DATABASE_URL", db_url)
    monkeypatch.setenv("LORAWATCH_PASSWORD_PROFILE", "cheapest")
    monkeypatch.setenv("USER", "ops")
    monkeypatch.setenv("LOGNAME", "ops")
    return db_url


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """`run(*argv, stdin="...")`: (exit code, stdout, stderr) of `lorawatch ARGV` with that stdin."""

    def go(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return go


def test_add_list_disable_enable_passwd(env: str, run: Run) -> None:
    assert run("users", "add", "Alice", "--role", "care", "--password-stdin", stdin=PASSWORD + "\n")[:2] == (
        0,
        "user alice added with role care\n",
    )
    code, _, err = run("users", "add", "alice", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert (code, err) == (1, "lorawatch: there is already a user 'alice'\n")
    code, out, _ = run("users", "list", "--json")
    listed = json.loads(out)
    assert [(u["username"], u["role"], u["disabled"]) for u in listed] == [("alice", "care", False)]
    assert "password" not in out and "argon2" not in out
    assert run("users", "disable", "alice")[0] == 0
    assert "disabled" in run("users", "list")[1]
    assert run("users", "enable", "alice")[0] == 0
    assert run("users", "passwd", "alice", "--password-stdin", stdin="another long password\n")[0] == 0
    with psycopg.connect(env) as conn:
        creds = users.credentials(conn, "alice")
    assert creds is not None and Passwords("cheapest").verify(creds.password_hash, "another long password")
    code, _, err = run("users", "disable", "bob")
    assert (code, err) == (1, "lorawatch: there is no user 'bob'\n")
    code, out, _ = run("audit", "--json")
    trail = [(e["actor"], e["action"], e["target"]) for e in json.loads(out)]
    assert trail == [
        ("cli:ops", "user_added", "user:alice"),
        ("cli:ops", "user_disabled", "user:alice"),
        ("cli:ops", "user_enabled", "user:alice"),
        ("cli:ops", "password_changed", "user:alice"),
    ]


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["users", "add", "bad name", "--role", "care", "--password-stdin"], PASSWORD, "username 'bad name': "),
        (["users", "add", "carol", "--role", "care", "--password-stdin"], "short", "password: the password must have"),
        (["users", "add", "carol", "--role", "care"], PASSWORD, "no terminal to read the password from"),
        (["users", "token", "create", "carol", "--name", " "], "", "--name: 1 to 100 characters"),
        (["audit", "--since", "last tuesday"], "", "--since 'last tuesday': write a duration"),
        (["audit", "--limit", "0"], "", "--limit must be between"),
    ],
)
def test_usage_errors_name_the_field(env: str, run: Run, argv: list[str], stdin: str, message: str) -> None:
    code, _, err = run(*argv, stdin=stdin + "\n")
    assert code == 2 and message in err, err
    if "add" in argv:
        with psycopg.connect(env) as conn:
            assert users.list_users(conn) == []


def test_unknown_role_is_refused(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["users", "add", "carol", "--role", "root"])
    assert exc.value.code == 2 and "invalid choice: 'root'" in capsys.readouterr().err


def test_tokens_create_list_revoke(env: str, run: Run) -> None:
    run("users", "add", "robot", "--role", "highways", "--password-stdin", stdin=PASSWORD + "\n")
    code, out, err = run("users", "token", "create", "robot", "--name", "flood map")
    token = out.strip()
    assert code == 0 and token.startswith("lw_") and out.count("\n") == 1 and "shown only now" in err
    token_id = token.split("_")[1]
    code, out, _ = run("users", "token", "list", "--json")
    (listed,) = json.loads(out)
    assert (listed["id"], listed["username"], listed["name"], listed["revoked_at"]) == (
        token_id,
        "robot",
        "flood map",
        None,
    )
    assert token.split("_", 2)[2] not in out
    assert run("users", "token", "create", "nobody", "--name", "x")[0] == 1
    assert run("users", "token", "revoke", token_id)[:2] == (0, f"token {token_id} of robot revoked\n")
    assert run("users", "token", "revoke", token_id)[0] == 1  # already revoked
    assert "revoked" in run("users", "token", "list", "robot")[1]
    code, out, _ = run("audit", "--action", "token_created", "--json")
    (entry,) = json.loads(out)
    assert entry["target"] == f"token:{token_id}" and entry["detail"] == {"user": "robot", "name": "flood map"}
    code, out, _ = run("audit", "--since", "1h")
    assert "token_revoked" in out and "user_added" in out
    assert token.split("_", 2)[2] not in out


def test_api_password_is_stored_as_scram(env: str, run: Run) -> None:
    code, out, _ = run("db", "api-password", "--password-stdin", stdin="role password 123\n")
    assert code == 0 and "LORAWATCH_API_DATABASE_URL" in out
    with psycopg.connect(env) as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'lorawatch_api'").fetchone()
        conn.execute("ALTER ROLE lorawatch_api PASSWORD NULL")  # the test cluster trusts loopback anyway
    assert row is not None and row[0].startswith("SCRAM-SHA-256$") and "role password" not in row[0]


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lorawatch", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_serve_runs_the_api_on_the_api_role(env: str) -> None:
    port = free_port()
    proc = _serve({**os.environ, "LORAWATCH_LOG_LEVEL": "WARNING"}, port)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.1)
        else:
            pytest.fail("lorawatch serve did not answer within 30 s")
        assert ready.json() == {"status": "ready"}
        doc = httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json").json()
        assert "/api/v1/auth/login" in doc["paths"]
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught, as a process should.
    assert proc.returncode in (0, -15)


def test_serve_refuses_the_owner_role(env: str) -> None:
    proc = _serve({**os.environ, "LORAWATCH_API_DATABASE_URL": env}, free_port())
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "refusing to serve" in out and "superuser" in out and "the API did not start" in out
