"""FastAPI dependencies: authenticate a request and give it a database connection acting as its
user's role.

    @router.get("/things")
    def things(ctx: Acting) -> ...:                       # any authenticated role
    def admin_thing(ctx: Annotated[RequestContext, require("admin")]) -> ...:

`Acting` opens one transaction for the whole request: authentication runs in it as `lorawatch_api`,
then `SET LOCAL ROLE` switches it to `lorawatch_<role>`, so every query of the route is judged by
PostgreSQL's row-level security for that role. The transaction commits when the route returns,
before the response is sent (scope "function"), and rolls back if it raises. Routes must not call
`conn.commit()`: the role would end with the transaction and the next statement would fail as
`lorawatch_api`, which holds no data grants (fail closed, never a leak).

`Authenticated` is the same without the role switch, for the auth routes themselves (logout, me),
which touch only sessions and the audit log.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from dashboard.auth import authenticate, check_csrf, client_ip
from dashboard.errors import ApiError
from dashboard.state import app_state
from dashboard.tokens import SESSION_COOKIE
from store import access
from store.records import Principal

bearer_scheme = HTTPBearer(
    auto_error=False,
    bearerFormat="lw_<id>_<secret>",
    scheme_name="apiToken",
    description="An API token from `lorawatch users token create` (CSRF-exempt).",
)
cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="session",
    description="The session cookie set by POST /api/v1/auth/login; unsafe methods also need X-CSRF-Token.",
)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """An authenticated request: its connection (inside the request's transaction), who it is, and
    the client's address (for the audit log)."""

    conn: psycopg.Connection
    principal: Principal
    ip: str | None


def _authenticated(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    cookie: Annotated[str | None, Depends(cookie_scheme)],
) -> Iterator[RequestContext]:
    state = app_state(request)
    with state.pool.connection() as conn, conn.transaction():
        principal = authenticate(conn, bearer.credentials if bearer else None, cookie)
        check_csrf(request, principal, state.settings)
        yield RequestContext(conn, principal, client_ip(request))


Authenticated = Annotated[RequestContext, Depends(_authenticated, scope="function")]


def _acting(ctx: Authenticated) -> Iterator[RequestContext]:
    try:
        access.act_as(ctx.conn, ctx.principal.role)
    except PermissionError:
        raise ApiError(403, "forbidden", "your role has no access to data") from None
    yield ctx


Acting = Annotated[RequestContext, Depends(_acting, scope="function")]


def require(*roles: str) -> Any:
    """A dependency for routes only some roles may call: 403 for the others (after authentication,
    so no credentials is still 401). Use as `Annotated[RequestContext, require("admin")]`."""
    allowed = frozenset(roles)
    unknown = allowed - set(access.DB_ROLES)
    if unknown:
        msg = f"unknown roles {sorted(unknown)}"
        raise ValueError(msg)

    def check(ctx: Acting) -> RequestContext:
        if ctx.principal.role not in allowed:
            raise ApiError(403, "forbidden", f"this needs the role {' or '.join(sorted(allowed))}")
        return ctx

    return Depends(check)
