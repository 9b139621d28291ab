"""`GET /api/v1/rules` (the alert rules in force) and `POST /api/v1/rules/check` (validate an uploaded
rules file like `lorawatch rules check`), docs/api.md.

Which file is in force: the one the alert worker and `lorawatch rules check` use (`ApiSettings.rules_file`,
which `lorawatch serve` fills from `LORAWATCH_RULES_FILE`), else the defaults shipped in
alerts/default_rules.yaml.

Who sees which rule: rules name no person, but a care rule's `applies_to` names care groups and
devices. So each role sees the rules of its own fleet (`applies_to.kind`), the rules that watch every
device (no filter at all) and the gateway rules (a gateway outage concerns both fleets); admin sees
all. A rule filtered by devices, groups or applications without a kind could be either fleet's: admin
only.

A check answers 200 whatever the file says: `ok` and the problems, each `FILE:LINE: key: message` as
the CLI prints them. The request was fine; the file is what has problems. The upload is YAML text
(at most 1 MiB), and its aliases may not expand it past `_MAX_NODES` nodes (a "billion laughs"
document of a few hundred bytes would otherwise expand to gigabytes in the loader).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from alerts.rules import (
    DEFAULT_RULES_FILE,
    Rule,
    RulesError,
    RuleSet,
    describe,
    format_duration,
    load_rules,
    parse_rules,
)
from dashboard.deps import Acting
from dashboard.errors import ApiError, ErrorBody
from dashboard.pagination import Cursor, Limit, decode_cursor, page
from dashboard.state import app_state

router = APIRouter(prefix="/api/v1", tags=["rules"])

#: The largest upload `rules/check` reads.
MAX_UPLOAD = 1024 * 1024
#: The most YAML nodes an upload may expand to through its aliases.
_MAX_NODES = 200_000
Fleet = Literal["gully", "care", "unassigned", "gateway", "all", "admin"]
#: The fleets of the rules each role sees (admin: every rule).
_SHOWN: dict[str, frozenset[str]] = {
    "highways": frozenset({"gully", "gateway", "all"}),
    "care": frozenset({"care", "gateway", "all"}),
}


class AppliesTo(BaseModel):
    kind: str | None
    devices: list[str]
    groups: list[str]
    applications: list[str]


class RuleItem(BaseModel):
    """One rule as the file writes it (per-device overrides are not shown). `fleet`: whose devices it
    watches, which decides who sees it; `page`: false for a rule whose alerts are recorded but notify
    nobody; `summary`: the CLI's one line (`lorawatch rules check -v`)."""

    name: str
    category: str
    type: str
    severities: list[str]
    fleet: Fleet
    applies_to: AppliesTo
    routes: list[str]
    page: bool
    disabled: bool
    repeat_every: str | None
    description: str | None
    summary: str


class RulesOut(BaseModel):
    """The rules in force that your role sees, in file order, a page at a time (`next_cursor` is null on
    the last; the cursor is a position in the file, so a page after the file changed may skip or repeat
    a rule). `ok` is false (and `rules` empty) when the file has problems: the alert worker would
    refuse to start on it."""

    ok: bool
    rules: list[RuleItem]
    problems: list[str]
    next_cursor: str | None


class CheckOut(BaseModel):
    """The outcome of checking an uploaded rules file: `ok`, its size, or every problem found."""

    ok: bool
    rules: int
    routes: int
    problems: list[str]


def fleet_of(rule: Rule) -> Fleet:
    """Whose devices a rule watches (the pure part of who may see it)."""
    if rule.category == "gateway_offline":
        return "gateway"
    a = rule.applies_to
    if a.kind is not None:
        return a.kind
    return "admin" if (a.devices or a.groups or a.applications) else "all"


def shown_to(role: str, rule: Rule) -> bool:
    return role == "admin" or fleet_of(rule) in _SHOWN.get(role, frozenset())


def _severities(rule: Rule) -> list[str]:
    single = getattr(rule, "severity", None)
    if isinstance(single, str):
        return [single]
    levels = getattr(rule, "levels", None)
    return [str(sev) for sev, _ in levels()] if callable(levels) else []


def rule_item(rule: Rule) -> RuleItem:
    a = rule.applies_to
    return RuleItem(
        name=rule.name,
        category=rule.category,
        type=rule.type,
        severities=_severities(rule),
        fleet=fleet_of(rule),
        applies_to=AppliesTo(
            kind=a.kind, devices=list(a.devices), groups=list(a.groups), applications=list(a.applications)
        ),
        routes=list(rule.routes),
        page=rule.page,
        disabled=rule.disabled,
        repeat_every=format_duration(rule.repeat_every) if rule.repeat_every else None,
        description=rule.description,
        summary=describe(rule),
    )


@dataclass(frozen=True, slots=True)
class _Loaded:
    stamp: tuple[str, int, int]
    rules: RuleSet | None
    problems: tuple[str, ...]


_cache: dict[str, _Loaded] = {}


def _rules_file(request: Request) -> Path:
    """The rules file in force (see the module's docstring)."""
    configured = app_state(request).settings.rules_file
    return configured if configured is not None else DEFAULT_RULES_FILE


def _load(path: Path) -> _Loaded:
    """The file, loaded once per version of it (by modification time and size)."""
    try:
        st = path.stat()
        stamp = (str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = (str(path), -1, -1)
    cached = _cache.get(str(path))
    if cached is not None and cached.stamp == stamp:
        return cached
    try:
        loaded = _Loaded(stamp, load_rules(path), ())
    except RulesError as exc:
        loaded = _Loaded(stamp, None, tuple(_printable(m) for m in exc.messages))
    _cache[str(path)] = loaded
    return loaded


def rules_in_force(request: Request) -> RuleSet | None:
    """The rule set in force, or None while its file has errors (the pages then fall back to their
    defaults and GET /rules says what is wrong)."""
    return _load(_rules_file(request)).rules


@router.get("/rules", summary="The alert rules in force that your role may see")
def list_rules(ctx: Acting, request: Request, limit: Limit = 100, cursor: Cursor = None) -> RulesOut:
    after = decode_cursor(cursor, int)
    loaded = _load(_rules_file(request))
    if loaded.rules is None:
        return RulesOut(ok=False, rules=[], problems=list(loaded.problems), next_cursor=None)
    role, start = ctx.principal.role, after[0] + 1 if after else 0
    shown = [(i, r) for i, r in enumerate(loaded.rules.rules) if i >= start and shown_to(role, r)]
    items, next_cursor = page(shown, limit, key=lambda item: (item[0],))
    return RulesOut(ok=True, rules=[rule_item(r) for _, r in items], problems=[], next_cursor=next_cursor)


def expanded_nodes(text: str, limit: int = _MAX_NODES) -> int:
    """How many nodes the YAML document becomes with its aliases expanded, counted on the composed
    graph (where an alias is a shared node) without expanding it; stops counting past `limit`. 0 when
    the text is not YAML (the rules loader reports that, with its line)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return 0
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = limit + 1  # a node inside itself (recursive alias) counts as too many
        children: list[Any] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        total = 1
        for child in children:
            total = min(limit + 1, total + size(child))
        sizes[id(node)] = total
        return total

    return size(root) if root is not None else 0


def _printable(message: str) -> str:
    """A problem line as valid Unicode: YAML escapes can make lone surrogates (`"\\udb61"`), which
    the messages quote and no JSON encoder can write; they are shown as their escapes."""
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def check_text(text: str, source: str = "rules.yaml") -> CheckOut:
    """`lorawatch rules check` on a text: every problem, or the rules' and routes' counts."""
    if expanded_nodes(text) > _MAX_NODES:
        return CheckOut(
            ok=False,
            rules=0,
            routes=0,
            problems=[f"{source}: its aliases expand it past {_MAX_NODES} YAML nodes; write the rules out"],
        )
    try:
        ruleset = parse_rules(text, source)
    except RulesError as exc:
        return CheckOut(ok=False, rules=0, routes=0, problems=[_printable(m) for m in exc.messages])
    return CheckOut(ok=True, rules=len(ruleset.rules), routes=len(ruleset.routes), problems=[])


_MEDIA = ("application/yaml", "text/yaml", "text/plain")
_UPLOAD: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the rules file, YAML text (UTF-8, at most 1 MiB)",
        # A YAML body is any YAML document (what is wrong with it is the answer, not a refusal);
        # as text/plain it is the file's text.
        "content": {
            "application/yaml": {"schema": {"description": "the rules file"}},
            "text/yaml": {"schema": {"description": "the rules file"}},
            "text/plain": {"schema": {"type": "string", "maxLength": MAX_UPLOAD}},
        },
    }
}


@router.post(
    "/rules/check",
    summary="Check a rules file (the body) as `lorawatch rules check` does",
    openapi_extra=_UPLOAD,
    responses={
        413: {"model": ErrorBody, "description": "The rules file is larger than 1 MiB"},
        415: {"model": ErrorBody, "description": "The body is not YAML text"},
    },
)
async def check_rules(_ctx: Acting, request: Request) -> CheckOut:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not media:
        raise ApiError(422, "invalid_request", "body: send the rules file (Content-Type application/yaml)")
    if media not in _MEDIA:
        raise ApiError(415, "unsupported_media_type", f"body: send the rules file as {', '.join(_MEDIA)}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD:
            raise ApiError(413, "too_large", "a rules file is at most 1 MiB")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        return CheckOut(
            ok=False, rules=0, routes=0, problems=[f"rules.yaml: not UTF-8 text ({exc.reason} at byte {exc.start})"]
        )
    return await run_in_threadpool(check_text, text)
