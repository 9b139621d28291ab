"""The audit log (and alert_log, the alerts' trail) is append-only: the API roles may insert, not
change, delete or truncate; only admin reads it; and the owner's changes are refused by triggers."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import errors, sql

from store import audit

ROLES = ("lorawatch_admin", "lorawatch_highways", "lorawatch_care")


def in_role(conn: psycopg.Connection, role: str | None) -> None:
    if role is not None:
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def entry(db_url: str) -> str:
    with psycopg.connect(db_url) as conn:
        audit.record(conn, actor="alice", actor_role="admin", action="login", ip="127.0.0.1")
        conn.execute(
            "INSERT INTO alerts (rule, category, severity, subject, kind, state, opened_at) "
            "VALUES ('r', 'offline', 'warning', 'gateway:g', 'gateway', 'firing', now())"
        )
        conn.execute("INSERT INTO alert_log (alert_id, actor, action) SELECT id, 'engine', 'opened' FROM alerts")
    return db_url


@pytest.mark.parametrize("role", [None, *ROLES])  # None: lorawatch_api itself, before any SET ROLE
def test_api_roles_append_but_never_change(entry: str, api_db_url: str, role: str | None) -> None:
    with psycopg.connect(api_db_url) as conn:
        with conn.transaction():
            in_role(conn, role)
            audit.record(conn, actor="bob", action="viewed", target="alert:1", detail={"why": "test"})
        for statement in (
            "UPDATE audit_log SET actor = 'mallory'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "INSERT INTO audit_log (at, actor, action) VALUES ('2000-01-01', 'x', 'backdated')",
            "UPDATE alert_log SET note = 'x'",
            "DELETE FROM alert_log",
            "TRUNCATE alert_log",
        ):
            with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
                in_role(conn, role)
                conn.execute(statement)
    with psycopg.connect(entry) as owner:
        assert owner.execute("SELECT count(*) FROM audit_log").fetchone() == (2,)
        assert owner.execute("SELECT count(*) FROM audit_log WHERE actor = 'mallory'").fetchone() == (0,)


@pytest.mark.parametrize("role", [None, "lorawatch_highways", "lorawatch_care"])
def test_only_admin_reads_it(entry: str, api_db_url: str, role: str | None) -> None:
    with psycopg.connect(api_db_url) as conn:
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
            in_role(conn, role)
            conn.execute("SELECT * FROM audit_log")
        with conn.transaction():
            in_role(conn, "lorawatch_admin")
            (found,) = audit.entries(conn)
    assert (found.actor, found.action, found.ip) == ("alice", "login", "127.0.0.1")
    assert found.at <= datetime.now(UTC)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "UPDATE alert_log SET note = 'x'",
        "DELETE FROM alert_log",
        "TRUNCATE alert_log CASCADE",
    ],
)
def test_even_the_owner_is_refused(entry: str, statement: str) -> None:
    with psycopg.connect(entry) as owner, pytest.raises(errors.InsufficientPrivilege, match="append-only"):
        owner.execute(statement)
