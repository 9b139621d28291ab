"""What a browser test does the way a person would, and the checks every page gets.

- `login(page, role)`: the login form, filled and submitted like a person (labels, button).
- `axe_violations(page)`: axe-core (node_modules/, from the npm registry) run in the page with the
  WCAG 2.2 AA tags; the serious and critical violations. `assert_accessible` fails with a readable list.
- `crawl(page, paths)`: every same-site page and fragment reachable from `paths`, with the page's
  session, for checks that must hold "anywhere" (what a role must never see).
- `LocalOnly`: a context-wide route that lets requests to 127.0.0.1 through and aborts (and records)
  every other one, so a page that reaches for a CDN fails its test instead of quietly working online.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from playwright.sync_api import BrowserContext, Page, Request, Route

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "tests" / "artifacts"
README_IMAGES = ROOT / "docs" / "images"
PASSWORD = "correct horse battery staple"
ROLES = ("admin", "highways", "care")
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
SERIOUS = ("serious", "critical")


def login(page: Page, role: str, *, then: str = "", password: str = PASSWORD) -> None:
    """Log in as the user named after `role` through the form (the page's context has the site as its
    base URL), landing on the role's home page or, with `then`, where the form was sent from
    (`/login?next=...`, as after following a link without a session); waits until it has left /login."""
    page.goto("/login" + (f"?next={quote(then, safe='/')}" if then else ""))
    page.get_by_label("Username").fill(role)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    assert urlsplit(page.url).path != "/login", f"login as {role} failed: still on {page.url}"


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core in `page` (WCAG 2.2 AA rules); the serious and critical violations."""
    assert AXE_JS.is_file(), f"{AXE_JS} is missing: run scripts/setup.sh (npm ci)"
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    result: dict[str, Any] = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
            return {violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                helpUrl: v.helpUrl, targets: v.nodes.map(n => n.target.join(' ')),
                summary: v.nodes.slice(0, 3).map(n => n.failureSummary)}))};
        }""",
        list(WCAG_TAGS),
    )
    return [v for v in result["violations"] if v["impact"] in SERIOUS]


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        lines.extend(f"    at {target}" for target in v["targets"][:8])
        lines.extend(f"    {s.replace(chr(10), ' / ')}" for s in v["summary"][:1] if s)
    return "\n".join(lines)


def assert_accessible(page: Page) -> None:
    violations = axe_violations(page)
    assert not violations, f"axe: serious/critical WCAG 2.2 AA violations on {page.url}:\n" + describe_violations(
        violations
    )


@dataclass
class LocalOnly:
    """Requests the pages made, the refused non-loopback ones apart, and the pages' script errors."""

    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def install(self, context: BrowserContext) -> None:
        context.route("**/*", self._route)

    def _route(self, route: Route, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob", "about") or parts.hostname == "127.0.0.1":
            route.continue_()
        else:
            self.refused.append(request.url)
            route.abort("blockedbyclient")

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))


@dataclass(frozen=True, slots=True)
class Fetched:
    """One page or fragment a crawl fetched, as the server sent it."""

    path: str
    status: int
    body: str


_LINK = re.compile(r"""(?:href|src|data-live|action)\s*=\s*["']([^"'#]+)""")
_NOT_CRAWLED = ("/logout", "/login", "/static/", "/api/v1/docs", "/api/v1/openapi.json")


def crawl(page: Page, start: tuple[str, ...], *, limit: int = 80) -> dict[str, Fetched]:
    """Every same-site page, fragment and export reachable by links (and `data-live` fragment URLs)
    from `start`, fetched with the page's session (GET only, never /logout); path -> what came back."""
    base = urlsplit(page.url)
    seen: dict[str, Fetched] = {}
    queue = list(start)
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        response = page.request.get(path, max_redirects=5)
        body = response.text()
        seen[path] = Fetched(path, response.status, body)
        if "html" not in response.headers.get("content-type", ""):
            continue
        for raw in _LINK.findall(body):
            link = html.unescape(raw)
            parts = urlsplit(link)
            if (parts.scheme or parts.netloc) and parts.netloc != base.netloc:
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if target.startswith("/") and not target.startswith(_NOT_CRAWLED) and target not in seen:
                queue.append(target)
    return seen


_TOKEN = re.compile(r'(name="csrf[-_]token" (?:content|value)=")[^"]*')


def without_tokens(body: str) -> str:
    """A page less its CSRF token (in the head's meta and the logout form): random text, which can hold
    any short marker a test looks for by chance (a care marker of three letters was once in it)."""
    return _TOKEN.sub(r"\1", body)
