"""`lorawatch audit [--since WHEN] [--json]`: the audit log, oldest first (the newest --limit rows)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

import psycopg

from alerts.rules import parse_duration
from lorawatch.cli import UsageError, database_url
from lorawatch.settings import Settings
from store import audit


def parse_since(text: str) -> datetime:
    """A duration back from now (`24h`, `7d`) or an ISO 8601 time (UTC when it names no zone)."""
    try:
        return datetime.now(UTC) - parse_duration(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        msg = f"--since {text!r}: write a duration back from now (24h, 7d) or an ISO time (2026-01-31T08:00Z)"
        raise UsageError(msg) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    if not 1 <= args.limit <= 100_000:
        raise UsageError("--limit must be between 1 and 100000")
    since = parse_since(args.since) if args.since else None
    with psycopg.connect(database_url(settings)) as conn:
        rows = audit.entries(conn, since=since, action=args.action, actor=args.actor, limit=args.limit)
    rows.reverse()
    if args.json:
        print(json.dumps([e.as_json() for e in rows], indent=2))
        return 0
    if not rows:
        print("no audit entries")
    for e in rows:
        who = f"{e.actor} ({e.actor_role})" if e.actor_role else e.actor
        detail = " " + json.dumps(e.detail, sort_keys=True) if e.detail else ""
        where = f" from {e.ip}" if e.ip else ""
        print(f"{e.at:%Y-%m-%d %H:%M:%S}  {who:<28} {e.action:<16} {e.target or '-'}{detail}{where}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `audit` to the `lorawatch` command line."""
    p = sub.add_parser(
        "audit",
        help="the audit log: logins, logouts, token and user changes, views of care data",
        description="Print the audit log, oldest first: the newest --limit entries since --since.",
    )
    p.add_argument("--since", metavar="WHEN", help="a duration back from now (24h, 7d) or an ISO 8601 time")
    p.add_argument("--action", help="only this action (login, login_failed, token_created, ...)")
    p.add_argument("--actor", help="only this actor (a username, or cli:<os user>)")
    p.add_argument("--limit", type=int, default=1000, help="at most this many entries (default 1000)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_audit)
