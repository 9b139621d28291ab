"""A live API: the real app under a real uvicorn server on a loopback port, on the test database,
connected as lorawatch_api. Tests talk to it with httpx over HTTP (Starlette's TestClient warns under
this suite's filterwarnings=error)."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import uvicorn
from fastapi import FastAPI

from dashboard.app import create_app
from dashboard.config import ApiSettings
from dashboard.passwords import Passwords
from dashboard.tokens import new_api_token
from lorawatch.services import free_port
from store import users

PASSWORD = "correct horse battery staple"
CHEAP = Passwords("cheapest")


@contextmanager
def running(app: FastAPI, log_level: str = "warning") -> Iterator[uvicorn.Server]:
    """Serve `app` on a free loopback port until the block ends (server.started is False when the
    app's lifespan refused to start)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level=log_level, log_config=None, lifespan="on")
    )

    def run() -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits when the lifespan refuses to start
            server.run()

    thread = threading.Thread(target=run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(15)


def base_url(server: uvicorn.Server) -> str:
    return f"http://127.0.0.1:{server.config.port}"


def settings_for(api_db_url: str, **overrides: Any) -> ApiSettings:
    base = ApiSettings(database_url=api_db_url, password_profile="cheapest", login_window_s=60)
    return dataclasses.replace(base, **overrides)


@pytest.fixture
def serve(api_db_url: str) -> Iterator[Callable[..., str]]:
    """`serve(**settings)` starts the app with those settings and returns its base URL."""
    servers: list[Any] = []

    def start(**overrides: Any) -> str:
        ctx = running(create_app(settings_for(api_db_url, **overrides)))
        server = ctx.__enter__()
        servers.append(ctx)
        assert server.started, "the API did not start"
        return base_url(server)

    yield start
    for ctx in reversed(servers):
        ctx.__exit__(None, None, None)


@pytest.fixture
def api(serve: Callable[..., str]) -> str:
    """The API with the test defaults (cheap hashes, 5 failures per user in 60 s)."""
    return serve()


def add_user(db_url: str, name: str, role: str, password: str = PASSWORD, *, disabled: bool = False) -> None:
    with psycopg.connect(db_url) as conn:
        users.create_user(conn, name, role, CHEAP.hash(password))
        if disabled:
            users.set_disabled(conn, name, True)


def add_token(db_url: str, name: str, label: str = "test") -> str:
    new = new_api_token()
    with psycopg.connect(db_url) as conn:
        users.create_token(conn, name, new.id, new.secret_hash, label)
    return new.token


@pytest.fixture
def people(db_url: str) -> dict[str, str]:
    """One user per role (named after it) with PASSWORD, and an API token each: {role: token}."""
    tokens = {}
    for role in users.ROLES:
        add_user(db_url, role, role)
        tokens[role] = add_token(db_url, role)
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
