"""`POST /api/v1/auth/login`, `POST /api/v1/auth/logout`, `GET /api/v1/auth/me`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from dashboard import auth
from dashboard.deps import Authenticated
from dashboard.errors import ApiError
from dashboard.state import app_state
from store import audit, users

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class LoginOut(BaseModel):
    """The new session: the cookie is set on this response; send `csrf_token` as X-CSRF-Token with
    every unsafe request the cookie authenticates."""

    username: str
    role: str
    csrf_token: str
    expires_at: datetime


class Me(BaseModel):
    username: str
    role: str
    auth: Literal["session", "token"]
    #: the session's CSRF token (null for API tokens, which need none)
    csrf_token: str | None
    #: when the session ends (null for API tokens)
    expires_at: datetime | None


@router.post("/login", summary="Log in with a username and password (sets the session cookie)")
def login(body: LoginBody, request: Request, response: Response) -> LoginOut:
    state = app_state(request)
    auth.check_origin(request, state.settings)
    done = auth.login(state, body.username, body.password, auth.client_ip(request))
    auth.set_session_cookie(response, request, state.settings, done.token, done.expires_at)
    return LoginOut(username=done.username, role=done.role, csrf_token=done.csrf_token, expires_at=done.expires_at)


@router.post("/logout", status_code=204, summary="End this session (the cookie stops working at once)")
def logout(ctx: Authenticated, request: Request, response: Response) -> None:
    p = ctx.principal
    if p.via != "session":
        raise ApiError(
            403, "not_a_session", "logout ends a session; API tokens are revoked with `lorawatch users token revoke`"
        )
    assert isinstance(p.credential, bytes)
    users.revoke_session(ctx.conn, p.credential)
    audit.record(ctx.conn, actor=p.username, actor_role=p.role, action="logout", ip=ctx.ip)
    auth.clear_session_cookie(response, request, app_state(request).settings)


@router.get("/me", summary="Who the credentials belong to (and the session's CSRF token)")
def me(ctx: Authenticated) -> Me:
    p = ctx.principal
    via: Literal["session", "token"] = "session" if p.via == "session" else "token"
    return Me(username=p.username, role=p.role, auth=via, csrf_token=p.csrf_token, expires_at=p.expires_at)
