"""`lorawatch alerts run|list|ack|resolve` and `lorawatch silences add|list|expire`.

`alerts run` is the alert worker process (alerts/worker.py) wired to the settings: the rules file in
force, the environment for the routes' channels, the outbox for notifications.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

import psycopg

from alerts.engine import Engine, LifecycleError
from alerts.rules import RulesError, RuleSet, load_rules, parse_duration
from alerts.silences import SILENCE_KEYS
from alerts.worker import AlertWorker, wall_clock
from lorawatch.cli import UsageError, database_url
from lorawatch.cmd_rules import rules_path
from lorawatch.notify import build_delivery
from lorawatch.settings import Settings
from store import alerts as db


def load_ruleset(settings: Settings) -> RuleSet:
    path = rules_path(settings)
    try:
        return load_rules(path)
    except RulesError as exc:
        raise UsageError(
            "the rules file has problems (`lorawatch rules check` lists them):\n" + "\n".join(exc.messages)
        ) from None


def _engine(settings: Settings) -> Engine:
    return Engine(load_ruleset(settings), wall_clock, env=dict(os.environ))


def _run(args: argparse.Namespace, settings: Settings) -> int:
    url = database_url(settings)
    ruleset, env = load_ruleset(settings), dict(os.environ)
    delivery = build_delivery(settings, url, clock=wall_clock, rules=ruleset, env=env)
    worker = AlertWorker(url, ruleset, env=env, tick_s=args.tick, deliver=delivery.run)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.run(stop)
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    with psycopg.connect(database_url(settings)) as conn:
        alerts = db.list_alerts(conn, open_only=args.state == "open", limit=args.limit)
    if args.json:
        print(json.dumps([a.as_json() for a in alerts], indent=2))
        return 0
    if not alerts:
        print("no open alerts" if args.state == "open" else "no alerts")
        return 0
    for a in alerts:
        where = a.device_id or a.gateway_id or "-"
        flags = "".join([" late" if a.late else "", " simulated" if a.simulated else ""])
        print(f"{a.id:>6}  {a.state:<12} {a.severity:<8} {a.category:<15} {where:<24} "
              f"{a.opened_at:%Y-%m-%d %H:%M}  {a.rule}{flags}")  # fmt: skip
    return 0


def _person(args: argparse.Namespace) -> str:
    """Who acts: `--by`, else the login name."""
    return str(args.by or os.environ.get("USER") or "cli")


def _act(settings: Settings, action: Callable[[Engine, psycopg.Connection], str]) -> int:
    """Run one person's action on an alert; a transition its state refuses is exit 1 and one line."""
    engine = _engine(settings)
    with psycopg.connect(database_url(settings)) as conn:
        try:
            message = action(engine, conn)
        except LifecycleError as exc:
            print(f"lorawatch: {exc}", file=sys.stderr)
            return 1
    print(message)
    return 0


def _ack(args: argparse.Namespace, settings: Settings) -> int:
    by = _person(args)
    return _act(settings, lambda e, c: f"alert {e.acknowledge(c, args.id, by, args.note).id} acknowledged by {by}")


def _resolve(args: argparse.Namespace, settings: Settings) -> int:
    by = _person(args)
    return _act(settings, lambda e, c: f"alert {e.resolve(c, args.id, by, args.note).id} resolved by {by}")


def _assign(args: argparse.Namespace, settings: Settings) -> int:
    by = _person(args)

    def assign(engine: Engine, conn: psycopg.Connection) -> str:
        alert = engine.assign(conn, args.id, args.assignee, by, args.note)
        return f"alert {alert.id} assigned to {alert.assignee} by {by}"

    return _act(settings, assign)


def _note(args: argparse.Namespace, settings: Settings) -> int:
    by = _person(args)
    return _act(settings, lambda e, c: f"alert {e.note(c, args.id, by, args.text).id}: note added by {by}")


def _show(args: argparse.Namespace, settings: Settings) -> int:
    with psycopg.connect(database_url(settings)) as conn:
        alert = db.get_alert(conn, args.id)
        if alert is None:
            print(f"lorawatch: there is no alert {args.id}", file=sys.stderr)
            return 1
        log_rows = db.alert_log(conn, args.id)
    if args.json:
        keys = ("at", "actor", "action", "from_state", "to_state", "note")
        trail = [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in zip(keys, row, strict=True)}
                 for row in log_rows]  # fmt: skip
        print(json.dumps({**alert.as_json(), "log": trail}, indent=2))
        return 0
    for key, value in alert.as_json().items():
        print(f"{key:<17} {value}")
    print("log:")
    for at, actor, action, from_state, to_state, note in log_rows:
        move = f" {from_state} -> {to_state}" if to_state else ""
        print(f"  {at:%Y-%m-%d %H:%M:%S}  {actor:<12} {action}{move}{': ' + note if note else ''}")
    return 0


def _silence_add(args: argparse.Namespace, settings: Settings) -> int:
    matchers: dict[str, str] = {}
    for item in args.match:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise UsageError(f"--match {item!r}: write KEY=VALUE")
        if key not in SILENCE_KEYS:
            raise UsageError(f"--match {key}: a silence matches on {', '.join(SILENCE_KEYS)}")
        matchers[key] = value
    if not matchers:
        raise UsageError("a silence needs at least one --match KEY=VALUE (silencing everything is not allowed)")
    try:
        length = parse_duration(args.duration)
    except ValueError as exc:
        raise UsageError(f"--for {args.duration!r}: {exc}") from None
    if length.total_seconds() <= 0:
        raise UsageError(f"--for {args.duration!r}: a silence must last longer than 0 s")
    now = datetime.now(UTC)
    with psycopg.connect(database_url(settings)) as conn:
        silence_id = db.add_silence(conn, matchers, now, now + length, _person(args), args.comment or "")
    print(f"silence {silence_id}: {matchers} until {(now + length).isoformat(timespec='seconds')}")
    return 0


def _silence_list(args: argparse.Namespace, settings: Settings) -> int:
    with psycopg.connect(database_url(settings)) as conn:
        rows = db.list_silences(conn, active_at=None if args.all else datetime.now(UTC))
    if args.json:
        keys = ("id", "matchers", "starts_at", "ends_at", "created_by", "comment", "expired_at")
        out = [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in zip(keys, r, strict=True)} for r in rows
        ]
        print(json.dumps(out, indent=2))
        return 0
    if not rows:
        print("no active silences" if not args.all else "no silences")
    for sid, matchers, _starts, ends, by, comment, expired in rows:
        state = f"expired {expired:%Y-%m-%d %H:%M}" if expired else f"until {ends:%Y-%m-%d %H:%M}"
        print(f"{sid:>5}  {json.dumps(matchers)}  {state}  by {by}  {comment}")
    return 0


def _silence_expire(args: argparse.Namespace, settings: Settings) -> int:
    with psycopg.connect(database_url(settings)) as conn:
        ok = db.expire_silence(conn, args.id, datetime.now(UTC))
    if not ok:
        print(f"lorawatch: silence {args.id} does not exist or is no longer active", file=sys.stderr)
        return 1
    print(f"silence {args.id} expired")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerts = sub.add_parser("alerts", help="the alert worker, and alerts: list, ack, resolve")
    actions = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    p = actions.add_parser("run", help="the alert worker: evaluate rules on every stored reading and on the clock")
    p.add_argument("--tick", type=float, default=10.0, metavar="S", help="seconds between clock passes (default 10)")
    p.set_defaults(handler=_run)
    p = actions.add_parser("list", help="alerts, newest first")
    p.add_argument("--state", choices=("open", "all"), default="open", help="open alerts (default) or all")
    p.add_argument("--json", action="store_true", help="print JSON (category, rule, severity, device_id, ...)")
    p.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    p.set_defaults(handler=_list)
    for name, handler, text in (("ack", _ack, "acknowledge an alert: repeats and escalation stop"),
                                ("resolve", _resolve, "resolve an alert by hand")):  # fmt: skip
        p = actions.add_parser(name, help=text)
        p.add_argument("id", type=int, metavar="ID")
        p.add_argument("--by", metavar="NAME", help="who (default: $USER)")
        p.add_argument("--note", metavar="TEXT", help="why, or what was done")
        p.set_defaults(handler=handler)

    p = actions.add_parser("assign", help="give an alert to someone")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("assignee", metavar="NAME")
    p.add_argument("--by", metavar="NAME", help="who assigns (default: $USER)")
    p.add_argument("--note", metavar="TEXT")
    p.set_defaults(handler=_assign)
    p = actions.add_parser("note", help="add a note to an alert")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--by", metavar="NAME", help="who (default: $USER)")
    p.set_defaults(handler=_note)
    p = actions.add_parser("show", help="one alert and its log (who did what, when, why)")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_show)

    silences = sub.add_parser("silences", help="silences: hold back notifications (alerts are still recorded)")
    actions = silences.add_subparsers(dest="silences_command", metavar="ACTION", required=True)
    p = actions.add_parser("add", help="silence matching alerts for a while")
    p.add_argument("--match", action="append", default=[], metavar="KEY=VALUE",
                   help=f"repeatable, all must match; keys: {', '.join(SILENCE_KEYS)}")  # fmt: skip
    p.add_argument(
        "--for", dest="duration", default="2h", metavar="DURATION", help="how long (30m, 2h, 1d; default 2h)"
    )
    p.add_argument("--by", metavar="NAME", help="who (default: $USER)")
    p.add_argument("--comment", metavar="TEXT", help="why")
    p.set_defaults(handler=_silence_add)
    p = actions.add_parser("list", help="active silences (--all: every one)")
    p.add_argument("--all", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_silence_list)
    p = actions.add_parser("expire", help="end a silence now")
    p.add_argument("id", type=int, metavar="ID")
    p.set_defaults(handler=_silence_expire)
