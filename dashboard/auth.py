"""Login, sessions, CSRF and authentication: who a request is, decided before it touches data.

* **Login** (`login`): the failed-login count is checked first (per username and per client address,
  in the database), before any hashing, so a locked-out guesser costs no argon2 time. An unknown or
  disabled user is verified against a dummy hash and gets the same answer as a wrong password, so
  neither the message nor the time says whether a user exists. Every outcome is audited.
* **Sessions**: a random token in an HttpOnly, SameSite=Lax cookie (Secure over TLS, or when
  configured); the database stores its sha256. Logout, a password change and disabling the user end
  it at once.
* **CSRF**: every unsafe request authenticated by the cookie must carry the session's synchronizer
  token in `X-CSRF-Token`, and a cross-site `Origin` (or `Sec-Fetch-Site: cross-site`) is refused.
  Bearer-token requests are exempt: a browser never attaches those by itself. Login checks the origin
  too (login CSRF would sign a victim into the attacker's account).
* **API tokens**: `Authorization: Bearer lw_<id>_<secret>`, looked up by id, the secret's sha256
  compared in constant time, refused when revoked or when the user is disabled.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from fastapi import Request, Response

from dashboard.config import ApiSettings
from dashboard.errors import ApiError
from dashboard.state import AppState
from dashboard.tokens import (
    CSRF_HEADER,
    SESSION_COOKIE,
    digest,
    new_csrf_token,
    new_session_token,
    parse_api_token,
)
from store import audit, users
from store.records import Principal

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
#: What the client is told for every failed login, whatever the reason.
BAD_LOGIN = "invalid username or password"


def normalise_username(name: str) -> str:
    """Usernames are case-insensitive: stored and compared in lower case."""
    return name.strip().lower()


def printable(text: str) -> str:
    """`text` with what the database cannot store or a log should not carry (NUL, control characters,
    lone surrogates from JSON escapes) replaced: a name tried at login is recorded, whatever it is."""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)


def username_problem(name: str) -> str | None:
    if not _USERNAME.match(name):
        return "a username is 1 to 64 of a-z, 0-9 and . _ @ -, starting with a letter or digit"
    return None


def client_ip(request: Request) -> str | None:
    """The client's address (uvicorn applies X-Forwarded-For from trusted proxies), if it is one."""
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


# --- origin and CSRF --------------------------------------------------------------------------------


def check_origin(request: Request, settings: ApiSettings) -> None:
    """Refuse a request a browser made on behalf of another site."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise ApiError(403, "cross_origin", "cross-site requests are refused")
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser, or a same-origin GET: browsers send Origin on every unsafe fetch
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin != own and origin not in settings.allowed_origins:
        raise ApiError(403, "cross_origin", f"requests from origin {origin[:100]!r} are refused")


def check_csrf(request: Request, principal: Principal, settings: ApiSettings) -> None:
    """An unsafe request authenticated by the session cookie needs the session's CSRF token."""
    if request.method in SAFE_METHODS or principal.via != "session":
        return
    check_origin(request, settings)
    sent = request.headers.get(CSRF_HEADER, "")
    expected = principal.csrf_token or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ApiError(
            403, "csrf_failed", f"missing or wrong {CSRF_HEADER} header (the csrf_token of login or /api/v1/auth/me)"
        )


# --- authentication ---------------------------------------------------------------------------------


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"})


def authenticate(conn: psycopg.Connection, bearer: str | None, cookie: str | None) -> Principal:
    """Who the bearer token (preferred) or the session cookie belongs to; 401 otherwise. A bearer
    token that fails never falls back to the cookie."""
    if bearer is not None:
        parsed = parse_api_token(bearer)
        found = users.token_principal(conn, parsed[0]) if parsed else None
        if parsed is None or found is None or not hmac.compare_digest(found[1], digest(parsed[1])):
            raise _unauthenticated("invalid or revoked API token")
        users.touch_token(conn, parsed[0])
        return found[0]
    if cookie:
        principal = users.session_principal(conn, digest(cookie))
        if principal is None:
            raise _unauthenticated("the session has expired or was ended; log in again")
        return principal
    raise _unauthenticated("authentication required: an API token (Authorization: Bearer) or a session cookie")


# --- the session cookie -----------------------------------------------------------------------------


def _secure(request: Request, settings: ApiSettings) -> bool:
    return settings.cookie_secure if settings.cookie_secure is not None else request.url.scheme == "https"


def set_session_cookie(
    response: Response, request: Request, settings: ApiSettings, token: str, expires_at: datetime
) -> None:
    max_age = max(0, math.floor((expires_at - datetime.now(UTC)).total_seconds()))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request, settings),
    )


def clear_session_cookie(response: Response, request: Request, settings: ApiSettings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request, settings))


# --- login ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginOk:
    """A new session: the cookie's token (shown to this response only) and its CSRF token."""

    username: str
    role: str
    expires_at: datetime
    token: str = field(repr=False)
    csrf_token: str = field(repr=False)


def _retry_after(failures: dict[str, tuple[int, datetime]], limits: dict[str, int], window_s: float) -> int | None:
    """Seconds until the most limiting key is under its limit again, or None when none is over it."""
    now = datetime.now(UTC)
    waits = [
        window_s - (now - oldest).total_seconds()
        for key, (count, oldest) in failures.items()
        if count >= limits.get(key, math.inf)
    ]
    return max(1, math.ceil(max(waits))) if waits else None


def login(state: AppState, username: str, password: str, ip: str | None) -> LoginOk:
    """Check a username and password; a new session, or ApiError 401 (any failure) / 429 (too many)."""
    settings = state.settings
    name = printable(normalise_username(username))[:64]
    user_key = f"user:{name}"
    keys = [user_key] + ([f"ip:{ip}"] if ip else [])
    limits = {user_key: settings.login_max_failures, f"ip:{ip}": settings.login_max_failures_per_ip}
    with state.pool.connection() as conn:
        failures = users.recent_failures(conn, keys, settings.login_window_s)
        wait = _retry_after(failures, limits, settings.login_window_s)
        if wait is not None:
            audit.record(conn, actor=name, action="login_refused", detail={"reason": "rate_limited"}, ip=ip)
            conn.commit()
        creds = None if wait is not None or username_problem(name) else users.credentials(conn, name)
    if wait is not None:
        state.metrics.logins.labels("refused").inc()
        log.warning("login_refused", extra={"reason": "rate_limited", "ip": ip})
        raise ApiError(429, "rate_limited", "too many failed logins; try again later", {"Retry-After": str(wait)})

    with state.verify_slots:
        ok = state.passwords.verify(creds.password_hash if creds else None, password)
        rehashed = (
            state.passwords.hash(password)
            if ok and creds and state.passwords.needs_rehash(creds.password_hash)
            else None
        )
    reason = None if ok else ("unknown_user" if creds is None else "wrong_password")
    if ok and creds is not None and creds.disabled:
        ok, reason = False, "disabled"

    with state.pool.connection() as conn, conn.transaction():
        if not ok or creds is None:
            users.record_failure(conn, keys, settings.login_window_s)
            audit.record(conn, actor=name, action="login_failed", detail={"reason": reason}, ip=ip)
        else:
            users.clear_failures(conn, user_key)
            if rehashed is not None:  # made with other parameters than ours: replace it
                users.rehash(conn, creds.id, rehashed)
            token, csrf = new_session_token(), new_csrf_token()
            expires_at = users.create_session(conn, creds.id, digest(token), csrf, ttl_s=settings.session_ttl_s, ip=ip)
            users.logged_in(conn, creds.id)
            audit.record(conn, actor=creds.username, actor_role=creds.role, action="login", ip=ip)
    if not ok or creds is None:
        state.metrics.logins.labels("failed").inc()
        log.info("login_failed", extra={"reason": reason, "ip": ip})
        raise _unauthenticated(BAD_LOGIN)
    state.metrics.logins.labels("ok").inc()
    log.info("login", extra={"user": creds.username, "role": creds.role, "ip": ip})
    return LoginOk(creds.username, creds.role, expires_at, token, csrf)
