"""SQL of users, sessions, API tokens and login attempts (migration 0007). Queries only: hashing,
token formats and the login policy live in `dashboard/`; every function runs in the caller's
transaction.

The API runs these as `lorawatch_api`, before a request switches to its user's role; the CLI runs
them as the owner. Secrets never arrive here: sessions and tokens are looked up by their sha256.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg
from psycopg import errors
from psycopg.rows import class_row

from store.records import ApiToken, Credentials, Principal, User

ROLES = ("admin", "highways", "care")

_USER = "SELECT id, username, role, disabled, created_at, updated_at, last_login_at FROM users"
_ISSUED = """
SELECT t.id, u.username, t.name, t.created_at, t.last_used_at, t.revoked_at
FROM api_tokens t JOIN users u ON u.id = t.user_id"""


class UserExists(ValueError):
    """A user of that name exists already."""


# --- users ------------------------------------------------------------------------------------------


def create_user(conn: psycopg.Connection, username: str, role: str, password_hash: str) -> User:
    """A new user; `UserExists` when the name is taken."""
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(User)) as cur:
            row = cur.execute(
                "INSERT INTO users (username, role, password_hash) VALUES (%s, %s, %s) "
                "RETURNING id, username, role, disabled, created_at, updated_at, last_login_at",
                (username, role, password_hash),
            ).fetchone()
    except errors.UniqueViolation:
        msg = f"there is already a user {username!r}"
        raise UserExists(msg) from None
    assert row is not None
    return row


def get_user(conn: psycopg.Connection, username: str) -> User | None:
    with conn.cursor(row_factory=class_row(User)) as cur:
        return cur.execute(_USER + " WHERE username = %s", (username,)).fetchone()


def list_users(conn: psycopg.Connection) -> list[User]:
    with conn.cursor(row_factory=class_row(User)) as cur:
        return cur.execute(_USER + " ORDER BY username").fetchall()


def credentials(conn: psycopg.Connection, username: str) -> Credentials | None:
    """The user and its password hash, for login only."""
    with conn.cursor(row_factory=class_row(Credentials)) as cur:
        return cur.execute(
            "SELECT id, username, role, disabled, password_hash FROM users WHERE username = %s", (username,)
        ).fetchone()


def set_disabled(conn: psycopg.Connection, username: str, disabled: bool) -> User | None:
    """Disable or enable a user (None: no such user). Disabling ends its sessions at once; its API
    tokens stop working while it is disabled (authentication checks the user too)."""
    with conn.cursor(row_factory=class_row(User)) as cur:
        user = cur.execute(
            "UPDATE users SET disabled = %s, updated_at = now() WHERE username = %s "
            "RETURNING id, username, role, disabled, created_at, updated_at, last_login_at",
            (disabled, username),
        ).fetchone()
    if user is not None and disabled:
        revoke_user_sessions(conn, user.id)
    return user


def set_password(conn: psycopg.Connection, username: str, password_hash: str) -> User | None:
    """A new password hash (None: no such user); every session of the user ends."""
    with conn.cursor(row_factory=class_row(User)) as cur:
        user = cur.execute(
            "UPDATE users SET password_hash = %s, updated_at = now() WHERE username = %s "
            "RETURNING id, username, role, disabled, created_at, updated_at, last_login_at",
            (password_hash, username),
        ).fetchone()
    if user is not None:
        revoke_user_sessions(conn, user.id)
    return user


def rehash(conn: psycopg.Connection, user_id: int, password_hash: str) -> None:
    """Replace a hash made with older parameters after a successful login (sessions stay)."""
    conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user_id))


def logged_in(conn: psycopg.Connection, user_id: int) -> None:
    conn.execute("UPDATE users SET last_login_at = now() WHERE id = %s", (user_id,))


# --- sessions ---------------------------------------------------------------------------------------


def create_session(
    conn: psycopg.Connection, user_id: int, token_hash: bytes, csrf_token: str, *, ttl_s: float, ip: str | None
) -> datetime:
    """Store a new session; returns when it expires. Sessions long expired are pruned here."""
    conn.execute("DELETE FROM sessions WHERE expires_at < now() - interval '7 days'")
    row = conn.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at, ip) "
        "VALUES (%s, %s, %s, now() + make_interval(secs => %s), %s) RETURNING expires_at",
        (token_hash, user_id, csrf_token, ttl_s, ip),
    ).fetchone()
    assert row is not None
    result: datetime = row[0]
    return result


def session_principal(conn: psycopg.Connection, token_hash: bytes) -> Principal | None:
    """Who a live session belongs to: not revoked, not expired, its user not disabled."""
    row = conn.execute(
        "SELECT u.id, u.username, u.role, s.csrf_token, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token_hash = %s AND s.revoked_at IS NULL AND s.expires_at > now() AND NOT u.disabled",
        (token_hash,),
    ).fetchone()
    if row is None:
        return None
    return Principal(row[0], row[1], row[2], "session", token_hash, row[3], row[4])


def revoke_session(conn: psycopg.Connection, token_hash: bytes) -> bool:
    cur = conn.execute(
        "UPDATE sessions SET revoked_at = now() WHERE token_hash = %s AND revoked_at IS NULL", (token_hash,)
    )
    return cur.rowcount == 1


def revoke_user_sessions(conn: psycopg.Connection, user_id: int) -> int:
    cur = conn.execute("UPDATE sessions SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL", (user_id,))
    return cur.rowcount


# --- API tokens -------------------------------------------------------------------------------------


def create_token(conn: psycopg.Connection, username: str, token_id: str, secret_hash: bytes, name: str) -> ApiToken:
    """A new token for `username` (LookupError: no such user)."""
    user = get_user(conn, username)
    if user is None:
        msg = f"there is no user {username!r}"
        raise LookupError(msg)
    conn.execute(
        "INSERT INTO api_tokens (id, secret_hash, user_id, name) VALUES (%s, %s, %s, %s)",
        (token_id, secret_hash, user.id, name),
    )
    with conn.cursor(row_factory=class_row(ApiToken)) as cur:
        row = cur.execute(_ISSUED + " WHERE t.id = %s", (token_id,)).fetchone()
    assert row is not None
    return row


def token_principal(conn: psycopg.Connection, token_id: str) -> tuple[Principal, bytes] | None:
    """Who a live token belongs to and its stored secret hash (the caller compares it in constant
    time): not revoked, its user not disabled."""
    row = conn.execute(
        "SELECT u.id, u.username, u.role, t.secret_hash FROM api_tokens t JOIN users u ON u.id = t.user_id "
        "WHERE t.id = %s AND t.revoked_at IS NULL AND NOT u.disabled",
        (token_id,),
    ).fetchone()
    if row is None:
        return None
    return Principal(row[0], row[1], row[2], "token", token_id), bytes(row[3])


def touch_token(conn: psycopg.Connection, token_id: str) -> None:
    """Record use, at most once a minute per token (not a write on every request)."""
    conn.execute(
        "UPDATE api_tokens SET last_used_at = now() "
        "WHERE id = %s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        (token_id,),
    )


def list_tokens(conn: psycopg.Connection, username: str | None = None) -> list[ApiToken]:
    query, params = _ISSUED, [] if username is None else [username]
    if username is not None:
        query += " WHERE u.username = %s"
    with conn.cursor(row_factory=class_row(ApiToken)) as cur:
        return cur.execute(query + " ORDER BY t.created_at, t.id", params).fetchall()


def revoke_token(conn: psycopg.Connection, token_id: str) -> ApiToken | None:
    """Revoke a token (None: no such token, or revoked already)."""
    cur = conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (token_id,))
    if cur.rowcount != 1:
        return None
    with conn.cursor(row_factory=class_row(ApiToken)) as tcur:
        return tcur.execute(_ISSUED + " WHERE t.id = %s", (token_id,)).fetchone()


# --- login attempts ---------------------------------------------------------------------------------


def recent_failures(conn: psycopg.Connection, keys: Sequence[str], window_s: float) -> dict[str, tuple[int, datetime]]:
    """Per key: failed logins in the last `window_s` seconds and when the oldest of them was."""
    rows = conn.execute(
        "SELECT key, count(*), min(at) FROM login_attempts "
        "WHERE key = ANY(%s) AND at > now() - make_interval(secs => %s) GROUP BY key",
        (list(keys), window_s),
    ).fetchall()
    return {key: (int(n), oldest) for key, n, oldest in rows}


def record_failure(conn: psycopg.Connection, keys: Sequence[str], window_s: float) -> None:
    """Count a failed login against each key; rows older than the window are pruned here."""
    conn.execute("DELETE FROM login_attempts WHERE at < now() - make_interval(secs => %s)", (window_s,))
    conn.execute("INSERT INTO login_attempts (key) SELECT unnest(%s::text[])", (list(keys),))


def clear_failures(conn: psycopg.Connection, key: str) -> None:
    conn.execute("DELETE FROM login_attempts WHERE key = %s", (key,))


__all__ = [
    "ROLES",
    "UserExists",
    "clear_failures",
    "create_session",
    "create_token",
    "create_user",
    "credentials",
    "get_user",
    "list_tokens",
    "list_users",
    "logged_in",
    "recent_failures",
    "record_failure",
    "rehash",
    "revoke_session",
    "revoke_token",
    "revoke_user_sessions",
    "session_principal",
    "set_disabled",
    "set_password",
    "token_principal",
    "touch_token",
]
