"""The login form, logout, and `/` (each role's home page).

The form posts to the page itself (no script needed) and uses the API's own login: the same rate
limits, audit rows and session cookie as `POST /api/v1/auth/login`. The cookie is HttpOnly, so the
pages' scripts never see it; they send the session's CSRF token (in the page's meta tag) with every
unsafe API request. Logout takes that token as a hidden form field.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Cookie, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from dashboard import auth
from dashboard.errors import ApiError
from dashboard.pages.web import TEMPLATES, Page
from dashboard.state import app_state
from dashboard.tokens import SESSION_COOKIE
from store import audit, users

router = APIRouter(include_in_schema=False)

HOME = {"care": "/inbox"}  # everyone else starts on the flood-risk overview
_MAX_FORM = 4096


def safe_next(value: str | None) -> str | None:
    """Where to go after logging in: only a path on this site (never `//evil` or `https://...`)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 500:
        return None
    return value


def _login_page(request: Request, next_url: str | None, error: str | None, username: str, status: int) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request,
        "login.html",
        {"next": next_url or "", "error": error, "username": username, "nav": [], "user": None, "csrf_token": ""},
        status_code=status,
    )


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:  # the query's name
    return _login_page(request, safe_next(next), None, "", 200)


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    body = await request.body()
    if len(body) > _MAX_FORM:
        return _login_page(request, None, "That form was too large.", "", 413)
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    username, password = form.get("username", ""), form.get("password", "")
    next_url = safe_next(form.get("next"))
    state = app_state(request)
    try:
        auth.check_origin(request, state.settings)
        if not username or not password:
            raise ApiError(401, "unauthenticated", "Enter your username and password.")
        done = await run_in_threadpool(auth.login, state, username, password, auth.client_ip(request))
    except ApiError as exc:
        message = {
            401: str(exc.detail) if not username or not password else "That username and password do not match.",
            429: "Too many failed logins. Wait a few minutes, then try again.",
        }.get(exc.status_code, str(exc.detail))
        return _login_page(request, next_url, message, username[:64], exc.status_code)
    response = RedirectResponse(next_url or HOME.get(done.role, "/overview"), status_code=303)
    auth.set_session_cookie(response, request, state.settings, done.token, done.expires_at)
    return response


@router.post("/logout", response_model=None)
async def logout(request: Request, session: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None) -> Response:
    body = await request.body()
    sent = {k: v[0] for k, v in parse_qs(body[:_MAX_FORM].decode("utf-8", "replace")).items()}.get("csrf_token", "")
    state = app_state(request)
    response = RedirectResponse("/login", status_code=303)
    if session:
        with state.pool.connection() as conn, conn.transaction():
            try:
                principal = auth.authenticate(conn, None, session)
            except ApiError:
                principal = None  # already ended: just clear the cookie
            if principal is not None:
                expected = principal.csrf_token or ""
                if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
                    raise ApiError(403, "csrf_failed", "log out with the page's own form")
                assert isinstance(principal.credential, bytes)
                users.revoke_session(conn, principal.credential)
                ip = auth.client_ip(request)
                audit.record(conn, actor=principal.username, actor_role=principal.role, action="logout", ip=ip)
    auth.clear_session_cookie(response, request, state.settings)
    return response


@router.get("/")
def home(page: Page) -> RedirectResponse:
    return RedirectResponse(HOME.get(page.role, "/overview"), status_code=303)
