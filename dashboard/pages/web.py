"""What every page shares: the templates, the page's request context and its refusals.

Pages authenticate by the session cookie only (API tokens are for programs) and run, like the API,
in one transaction switched to the user's database role (`SET LOCAL ROLE`), so row-level security
decides what a page can show exactly as it does for `/api/v1`. A page with no session redirects to
the login form (a person, not a program, is asking); a page the role may not open answers 403 with an
HTML page saying so; a thing the role cannot see is 404 like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import psycopg
from fastapi import Cookie, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from dashboard.auth import authenticate, client_ip
from dashboard.errors import ApiError
from dashboard.figures.acks import pct_text
from dashboard.pages import formats
from dashboard.state import app_state
from dashboard.tokens import SESSION_COOKIE
from store import access, audit, status
from store.records import Principal

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
TEMPLATES.env.filters.update(
    duration=formats.duration,
    ago=formats.ago,
    utc=formats.utc,
    iso=formats.iso,
    number=formats.number,
    trend=formats.trend,
    pct=pct_text,
)

#: The pages each role's navigation offers (and may open), in order.
NAV: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("/overview", "Flood risk", frozenset({"admin", "highways"})),
    ("/inbox", "Alert inbox", frozenset({"admin", "highways", "care"})),
    ("/care", "Care flats", frozenset({"admin", "care"})),
    ("/network", "Device health", frozenset({"admin", "highways", "care"})),
)


class LoginRequired(Exception):
    """No valid session: send the person to the login form, then back to `next_url`."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PageError(Exception):
    """A refusal shown as a page (403: not for your role; 404: no such thing, or not yours to see)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


@dataclass(frozen=True, slots=True)
class PageContext:
    """A page request: its connection (in the request's transaction, acting as the user's role), who
    it is, and the request itself (for templates)."""

    conn: psycopg.Connection
    principal: Principal
    request: Request
    #: The time the page judges its data by: the wall clock, or the data clock (ApiSettings.data_clock).
    now: datetime

    @property
    def role(self) -> str:
        return self.principal.role

    def audit(self, action: str, target: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
        """One audit row (ids only) for a view of care data, as the API writes."""
        p = self.principal
        audit.record(
            self.conn,
            actor=p.username,
            actor_role=p.role,
            action=action,
            target=target,
            detail=dict(detail or {}),
            ip=client_ip(self.request),
        )


def _next_url(request: Request) -> str:
    path = request.url.path
    return path + (f"?{request.url.query}" if request.url.query else "")


def _page(
    request: Request, session: Annotated[str | None, Cookie(alias=SESSION_COOKIE, include_in_schema=False)] = None
) -> Iterator[PageContext]:
    state = app_state(request)
    with state.pool.connection() as conn, conn.transaction():
        try:
            principal = authenticate(conn, None, session)
        except ApiError:
            raise LoginRequired(_next_url(request)) from None
        access.act_as(conn, principal.role)
        yield PageContext(conn, principal, request, _clock(conn) if state.settings.data_clock else datetime.now(UTC))


def _clock(conn: psycopg.Connection) -> datetime:
    """The newest uplink time the role can see (the demo's data clock), or the wall clock."""
    newest = status.newest_seen(conn)
    return newest if newest is not None else datetime.now(UTC)


Page = Annotated[PageContext, Depends(_page, scope="function")]


def for_roles(*roles: str) -> Any:
    """A dependency for pages only some roles may open (403 page for the others)."""
    allowed = frozenset(roles)

    def check(page: Page) -> PageContext:
        if page.role not in allowed:
            names = " or ".join(sorted(allowed))
            raise PageError(403, "Not available to your role", f"This page is for the {names} role.")
        return page

    return Depends(check)


def render(page: PageContext, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A full page: the template with the navigation, the user and the session's CSRF token."""
    nav = [(href, label) for href, label, roles in NAV if page.role in roles]
    return TEMPLATES.TemplateResponse(
        page.request,
        template,
        {
            "user": page.principal,
            "nav": nav,
            "csrf_token": page.principal.csrf_token or "",
            "now": page.now,
            **values,
        },
        status_code=status,
    )


def fragment(request: Request, template: str, **values: Any) -> HTMLResponse:
    """A part of a page the page's script fetches to refresh itself (no navigation around it)."""
    return TEMPLATES.TemplateResponse(request, template, {"now": datetime.now(UTC), **values})


async def login_required(_request: Request, exc: Exception) -> RedirectResponse:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(f"/login?next={quote(exc.next_url, safe='/')}", status_code=303)


async def page_error(request: Request, exc: Exception) -> HTMLResponse:
    assert isinstance(exc, PageError)
    return TEMPLATES.TemplateResponse(
        request,
        "error.html",
        {"title": exc.title, "message": exc.message, "nav": [], "user": None, "csrf_token": ""},
        status_code=exc.status,
    )
