"""The API's database roles (migration 0007): the role names, the URL the API connects with, the
checks that refuse to serve through a role that could bypass row-level security, and chunk sealing.

docs/security.md explains the design: the API logs in as `lorawatch_api` (NOINHERIT, a member of the
three per-role roles) and switches to its user's role for each request, so PostgreSQL itself decides
which rows a request can see.
"""

from __future__ import annotations

import psycopg
from psycopg import conninfo as pgconninfo
from psycopg import sql

#: The login role the API connects as.
API_ROLE = "lorawatch_api"
#: The database role each application role acts as for a request.
DB_ROLES: dict[str, str] = {
    "admin": "lorawatch_admin",
    "highways": "lorawatch_highways",
    "care": "lorawatch_care",
}


def api_conninfo(owner_conninfo: str, role: str = API_ROLE) -> str:
    """The owner's connection string with `role` as the user and no password: what the API uses on a
    server that trusts loopback (the embedded cluster). Elsewhere configure a URL with a password."""
    params = pgconninfo.conninfo_to_dict(owner_conninfo)
    params.pop("password", None)
    params["user"] = role
    return pgconninfo.make_conninfo("", **params)


def role_problems(conn: psycopg.Connection) -> list[str]:
    """Why the connection's login must not serve the API (empty: it may). Fail closed: a superuser,
    a BYPASSRLS role or a table owner is exempt from row-level security; an INHERIT login would hold
    every role's privileges at once whenever a request forgot to switch role."""
    row = conn.execute(
        "SELECT current_user, rolsuper, rolbypassrls, rolinherit, "
        "EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid) "
        "FROM pg_roles r WHERE rolname = current_user"
    ).fetchone()
    if row is None:  # pragma: no cover - current_user always has a pg_roles row
        return ["the connection's role is not in pg_roles"]
    user, superuser, bypass, inherit, owns = row
    problems = []
    if superuser:
        problems.append(f"{user} is a superuser, which bypasses row-level security")
    if bypass:
        problems.append(f"{user} has BYPASSRLS")
    if owns:
        problems.append(f"{user} owns tables (owners can switch row-level security off)")
    if inherit:
        problems.append(f"{user} inherits its roles' privileges (it must be NOINHERIT)")
    for role in DB_ROLES.values():
        member = conn.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", (role,)).fetchone()
        if not (member and member[0]):
            problems.append(f"{user} is not a member of {role}")
    schema = conn.execute("SELECT to_regclass('public.sessions') IS NOT NULL").fetchone()
    if not (schema and schema[0]):
        problems.append("the database has no sessions table (run `lorawatch db migrate`)")
    return problems


def act_as(conn: psycopg.Connection, role: str) -> None:
    """Switch the current transaction to the database role of application role `role`; a role with
    no database role is an error (fail closed), never the login's own privileges."""
    db_role = DB_ROLES.get(role)
    if db_role is None:
        msg = f"no database role for application role {role!r}"
        raise PermissionError(msg)
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(db_role)))


def seal_chunks(conn: psycopg.Connection) -> int:
    """Revoke the API roles' grants from every hypertable chunk (a GRANT on a hypertable copies to its
    chunks); the number of chunks. A no-op before migration 0007."""
    exists = conn.execute("SELECT to_regprocedure('public.seal_chunks()') IS NOT NULL").fetchone()
    if not (exists and exists[0]):
        return 0
    row = conn.execute("SELECT public.seal_chunks()").fetchone()
    return int(row[0]) if row else 0


def set_api_password(conn: psycopg.Connection, password: str) -> None:
    """Give `lorawatch_api` a password, hashed on this side (SCRAM) so the plain text never reaches
    the server or its statement log."""
    method = conn.execute("SHOW password_encryption").fetchone()
    algorithm = (method[0] if method else "scram-sha-256").encode()
    hashed = conn.pgconn.encrypt_password(password.encode(), API_ROLE.encode(), algorithm)
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(API_ROLE), sql.Literal(hashed.decode())))


__all__ = ["API_ROLE", "DB_ROLES", "act_as", "api_conninfo", "role_problems", "seal_chunks", "set_api_password"]
