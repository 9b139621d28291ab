"""Care data is sealed by PostgreSQL itself: raw SQL as lorawatch_api acting as each role, with no
Python of ours between the query and the rows.

Seeded as the owner: a gully, a care device, an unassigned device, and a device that was care and is
now a gully (sealed), each with readings in two chunks, an event, an alert and its log line; plus a
gateway alert.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors, sql

from store import access

T0 = datetime(2026, 1, 10, tzinfo=UTC)
ROLES = ("lorawatch_admin", "lorawatch_highways", "lorawatch_care")
API_ROLES = (*ROLES, access.API_ROLE)
#: What each role sees, by device name (the gateway alert is 'gw').
VISIBLE = {
    "lorawatch_admin": {"gully-1", "care-1", "new-1", "was-care-1"},
    "lorawatch_highways": {"gully-1"},
    "lorawatch_care": {"care-1", "was-care-1"},
}
#: Relations readable by a role without forced row-level security, because they hold no care data
#: (gateways: ids, places, counts) or only that role reads them (audit_log: admin).
ALLOWLIST = {
    "lorawatch_admin": {"gateways", "audit_log", "dead_letters"},
    "lorawatch_highways": {"gateways"},
    "lorawatch_care": {"gateways"},
}


#: Our relations: the public schema's and the hypertables' chunks (TimescaleDB's own catalog tables,
#: readable by PUBLIC, hold its metadata, not our rows).
OURS = (
    "(n.nspname = 'public' OR c.oid IN (SELECT format('%%I.%%I', chunk_schema, chunk_name)::regclass "
    "FROM timescaledb_information.chunks))"
)


def seed(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO devices (device_id, application_id, kind) VALUES "
        "('gully-1', 'app', 'gully'), ('care-1', 'app', 'care'), ('new-1', 'app', 'unassigned'), "
        "('was-care-1', 'app', 'care')"
    )
    conn.execute("UPDATE devices SET kind = 'gully' WHERE device_id = 'was-care-1'")  # reassigned: stays sealed
    refs: dict[str, int] = dict(conn.execute("SELECT device_id, id FROM devices").fetchall())
    for name, ref in refs.items():
        for t in (T0, T0 + timedelta(days=45)):  # two 30-day chunks
            conn.execute("INSERT INTO readings (time, device_ref, distance_mm) VALUES (%s, %s, 1000)", (t, ref))
        conn.execute("INSERT INTO events (time, device_ref, kind) VALUES (%s, %s, 'alarm')", (T0, ref))
        kind = "care" if name in ("care-1", "was-care-1") else ("gully" if name == "gully-1" else "unassigned")
        conn.execute(
            "INSERT INTO alerts (rule, category, severity, subject, device_ref, device_id, kind, state, opened_at) "
            "VALUES ('r', 'offline', 'warning', %s, %s, %s, %s, 'firing', %s)",
            (f"device:{ref}", ref, name, kind, T0),
        )
    conn.execute(
        "INSERT INTO alerts (rule, category, severity, subject, gateway_id, device_id, kind, state, opened_at) "
        "VALUES ('gw', 'gateway_offline', 'warning', 'gateway:gw-1', 'gw-1', 'gw', 'gateway', 'firing', %s)",
        (T0,),
    )
    conn.execute("INSERT INTO alert_log (alert_id, actor, action) SELECT id, 'engine', 'opened' FROM alerts")
    conn.execute(
        "INSERT INTO gateways (gateway_key, gateway_id, first_seen, last_seen) VALUES ('gw-1', 'gw-1', %s, %s)",
        (T0, T0),
    )


@pytest.fixture
def seeded(db_url: str) -> str:
    with psycopg.connect(db_url) as conn:
        seed(conn)
    return db_url


@pytest.fixture
def as_api(api_db_url: str) -> Iterator[psycopg.Connection]:
    """A connection logged in as lorawatch_api, exactly as the API's pool makes them."""
    with psycopg.connect(api_db_url) as conn:
        yield conn


def act(conn: psycopg.Connection, role: str) -> None:
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))


def names(conn: psycopg.Connection, query: str) -> set[str]:
    return {r[0] for r in conn.execute(query).fetchall()}


# The device names each table's rows belong to, read by joining as the OWNER's view would (a join on
# devices as the role would hide rows and pass vacuously), so ids are mapped through a plain list.
def device_names_of(conn: psycopg.Connection, table: str, refs: dict[int, str]) -> set[str]:
    rows = conn.execute(sql.SQL("SELECT DISTINCT device_ref FROM {}").format(sql.Identifier(table))).fetchall()
    return {refs[r[0]] for r in rows}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_exactly_its_rows(seeded: str, as_api: psycopg.Connection, role: str) -> None:
    with psycopg.connect(seeded) as owner:
        refs = {i: n for n, i in owner.execute("SELECT device_id, id FROM devices").fetchall()}
    expected = VISIBLE[role]
    with as_api.transaction():
        act(as_api, role)
        assert names(as_api, "SELECT device_id FROM devices") == expected
        assert device_names_of(as_api, "readings", refs) == expected
        assert device_names_of(as_api, "events", refs) == expected
        assert names(as_api, "SELECT device_id FROM alerts") == expected | {"gw"}
        assert names(as_api, "SELECT a.device_id FROM alert_log l JOIN alerts a ON a.id = l.alert_id") == (
            expected | {"gw"}
        )
        # Aggregates and counts cover visible rows only.
        assert as_api.execute("SELECT count(*) FROM readings").fetchone() == (2 * len(expected),)
        assert as_api.execute(
            "SELECT count(DISTINCT device_ref) FROM readings WHERE time >= %s", (T0 - timedelta(days=1),)
        ).fetchone() == (len(expected),)
        assert names(as_api, "SELECT gateway_id FROM gateways") == {"gw-1"}


def test_highways_gets_no_care_rows_by_id(seeded: str, as_api: psycopg.Connection) -> None:
    """Asking for the care devices' ids directly (not through a join that would hide them) returns nothing."""
    with psycopg.connect(seeded) as owner:
        care = [r[0] for r in owner.execute("SELECT id FROM devices WHERE sealed OR kind <> 'gully'")]
        care_alerts = [r[0] for r in owner.execute("SELECT id FROM alerts WHERE device_ref = ANY(%s)", (care,))]
    assert len(care) == 3 and len(care_alerts) == 3
    with as_api.transaction():
        act(as_api, "lorawatch_highways")
        for query in (
            "SELECT count(*) FROM devices WHERE id = ANY(%s)",
            "SELECT count(*) FROM readings WHERE device_ref = ANY(%s)",
            "SELECT count(*) FROM events WHERE device_ref = ANY(%s)",
            "SELECT count(*) FROM alerts WHERE device_ref = ANY(%s)",
        ):
            assert as_api.execute(query, (care,)).fetchone() == (0,), query
        assert as_api.execute("SELECT count(*) FROM alert_log WHERE alert_id = ANY(%s)", (care_alerts,)).fetchone() == (
            0,
        )
        assert as_api.execute("SELECT count(*) FROM readings WHERE device_ref <> ALL(%s)", (care,)).fetchone() == (2,)


def test_reassigned_care_device_stays_sealed(seeded: str, as_api: psycopg.Connection) -> None:
    with psycopg.connect(seeded) as owner:
        assert owner.execute("SELECT kind, sealed FROM devices WHERE device_id = 'was-care-1'").fetchone() == (
            "gully",
            True,
        )
        owner.execute("UPDATE devices SET sealed = false WHERE device_id = 'was-care-1'")  # the trigger refuses
        owner.execute("UPDATE devices SET kind = 'unassigned' WHERE device_id = 'was-care-1'")
        assert owner.execute("SELECT sealed FROM devices WHERE device_id = 'was-care-1'").fetchone() == (True,)


def test_writes_through_policies(seeded: str, as_api: psycopg.Connection) -> None:
    """People's actions: highways may act on a gully alert, not on a care one (0 rows: invisible), and
    cannot log against it."""
    with psycopg.connect(seeded) as owner:
        gully, care = (
            owner.execute("SELECT id FROM alerts WHERE device_id = %s", (n,)).fetchone()[0]  # type: ignore[index]
            for n in ("gully-1", "care-1")
        )
    with as_api.transaction():
        act(as_api, "lorawatch_highways")
        assert as_api.execute("UPDATE alerts SET assignee = 'sam' WHERE id = %s", (gully,)).rowcount == 1
        assert as_api.execute("UPDATE alerts SET assignee = 'sam' WHERE id = %s", (care,)).rowcount == 0
        as_api.execute("INSERT INTO alert_log (alert_id, actor, action) VALUES (%s, 'sam', 'note')", (gully,))
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"), as_api.transaction():
        act(as_api, "lorawatch_highways")
        as_api.execute("INSERT INTO alert_log (alert_id, actor, action) VALUES (%s, 'sam', 'note')", (care,))
    with pytest.raises(errors.InsufficientPrivilege), as_api.transaction():  # not a granted column
        act(as_api, "lorawatch_highways")
        as_api.execute("UPDATE alerts SET kind = 'gully' WHERE id = %s", (gully,))


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1 FROM readings LIMIT 1",
        "SELECT 1 FROM devices LIMIT 1",
        "SELECT 1 FROM alerts LIMIT 1",
        "SELECT 1 FROM uplinks LIMIT 1",
        "SELECT 1 FROM audit_log LIMIT 1",
    ],
)
def test_the_login_alone_reads_nothing(seeded: str, as_api: psycopg.Connection, query: str) -> None:
    """NOINHERIT: without SET ROLE, lorawatch_api has no data privileges (a forgotten switch fails)."""
    with pytest.raises(errors.InsufficientPrivilege):
        as_api.execute(query)


def test_role_ends_with_its_transaction(seeded: str, as_api: psycopg.Connection) -> None:
    with as_api.transaction():
        act(as_api, "lorawatch_admin")
        assert as_api.execute("SELECT count(*) FROM devices").fetchone() == (4,)
    assert as_api.execute("SELECT current_user").fetchone() == (access.API_ROLE,)
    with pytest.raises(errors.InsufficientPrivilege):
        as_api.execute("SELECT count(*) FROM devices")


@pytest.mark.parametrize("table", ["uplinks", "outbox", "rule_state", "changes", "alert_notices",
                                   "simulated_readings", "simulated_events", "uplink_keys",
                                   "counters", "feed_head", "feed_cursors", "schema_migrations"])  # fmt: skip
def test_no_api_role_has_any_grant_on_internal_tables(seeded: str, table: str) -> None:
    with psycopg.connect(seeded) as owner:
        for role in API_ROLES:
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"):
                held = owner.execute("SELECT has_table_privilege(%s, %s, %s)", (role, table, privilege)).fetchone()
                assert held == (False,), f"{role} has {privilege} on {table}"


def chunk_grants(owner: psycopg.Connection) -> list[tuple[str, str]]:
    """(role, chunk) for every API role holding any privilege on any chunk."""
    return owner.execute(
        "SELECT r, format('%%I.%%I', c.chunk_schema, c.chunk_name) FROM timescaledb_information.chunks c, "
        "unnest(%s::text[]) r WHERE has_table_privilege(r, format('%%I.%%I', c.chunk_schema, c.chunk_name)::regclass, "
        "'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')",
        (list(API_ROLES),),
    ).fetchall()


def test_chunks_are_sealed_also_new_ones(seeded: str, as_api: psycopg.Connection) -> None:
    with psycopg.connect(seeded, autocommit=True) as owner:
        chunks = owner.execute(
            "SELECT chunk_schema, chunk_name FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'"
        ).fetchall()
        assert len(chunks) >= 2
        assert chunk_grants(owner) == []
        # A new chunk, made by an insert (as ingest makes them), and a GRANT on the hypertable, which
        # TimescaleDB copies to every chunk: both sealed at once.
        owner.execute(
            "INSERT INTO readings (time, device_ref) SELECT %s, id FROM devices WHERE device_id = 'care-1'",
            (T0 + timedelta(days=400),),
        )
        owner.execute("GRANT SELECT ON readings TO lorawatch_highways")
        after = owner.execute("SELECT count(*) FROM timescaledb_information.chunks").fetchone()
        assert after is not None and after[0] > len(chunks)
        assert chunk_grants(owner) == []
        owner.execute("ANALYZE readings")
    for schema, chunk in chunks:
        with pytest.raises(errors.InsufficientPrivilege), as_api.transaction():
            act(as_api, "lorawatch_highways")
            as_api.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, chunk)))
    with as_api.transaction():
        act(as_api, "lorawatch_highways")
        # Column statistics of care rows: not through the chunks, not through the hypertable.
        stats = as_api.execute(
            "SELECT count(*) FROM pg_stats WHERE schemaname = '_timescaledb_internal' OR tablename = 'readings'"
        ).fetchone()
        assert stats == (0,)
        assert as_api.execute("SELECT count(*) FROM readings").fetchone() == (2,)  # the hypertable still works


@pytest.mark.parametrize("role", ROLES)
def test_every_readable_relation_is_sealed_or_allowlisted(seeded: str, role: str) -> None:
    """A table granted later without row-level security fails here until it is on the allowlist."""
    with psycopg.connect(seeded) as owner:
        rows = owner.execute(
            "SELECT c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity, "
            "coalesce('security_invoker=true' = ANY(c.reloptions), false) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE {OURS} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
            "AND has_table_privilege(%s, c.oid, 'SELECT')",
            (role,),
        ).fetchall()
    readable = {r[0] for r in rows}
    assert {"devices", "readings", "events", "alerts", "alert_log"} <= readable
    for name, relkind, rls, forced, invoker in rows:
        if relkind == "v":
            assert invoker, f"view {name} runs with its owner's rights: make it security_invoker"
        elif name not in ALLOWLIST[role]:
            assert rls and forced, f"{role} can read {name}, which has no forced row-level security"


def test_the_login_reads_only_the_auth_tables(seeded: str) -> None:
    with psycopg.connect(seeded) as owner:
        rows = owner.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE {OURS} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
            "AND has_table_privilege(%s, c.oid, 'SELECT')",
            (access.API_ROLE,),
        ).fetchall()
    assert {r[0] for r in rows} == {"users", "sessions", "api_tokens", "login_attempts"}


def test_no_api_role_can_bypass_row_security(seeded: str, as_api: psycopg.Connection) -> None:
    with psycopg.connect(seeded) as owner:
        for role in API_ROLES:
            row = owner.execute(
                "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, rolinherit, rolcanlogin "
                "FROM pg_roles WHERE rolname = %s",
                (role,),
            ).fetchone()
            assert row is not None
            assert row[:6] == (False, False, False, False, False, False), role
            assert row[6] == (role == access.API_ROLE), role
            owns = owner.execute(
                "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = %s)",
                (role,),
            ).fetchone()
            assert owns == (0,), f"{role} owns relations"
        members = owner.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
            (access.API_ROLE,),
        ).fetchall()
        assert {m[0] for m in members} == set(ROLES)
        for role in ROLES:  # nobody else is in the three roles, and they are in nothing
            assert owner.execute(
                "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = %s",
                (role,),
            ).fetchone() == (0,)
        assert access.role_problems(owner) != []
    assert access.role_problems(as_api) == []


def test_act_as_fails_closed(as_api: psycopg.Connection) -> None:
    with pytest.raises(PermissionError), as_api.transaction():
        access.act_as(as_api, "superuser")
    assert as_api.execute("SELECT current_user").fetchone() == (access.API_ROLE,)
