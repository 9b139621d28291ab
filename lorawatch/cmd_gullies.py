"""`lorawatch gullies priority [--limit N] [--json]`: the cleanse-priority list, gullies ranked by their
silt and blockage evidence (alerts/priority.py says how), from the store the alert worker keeps.

Exit codes: 0 listed; 1 the database cannot be reached.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import psycopg

from alerts.priority import rank
from alerts.rules import BlockageRule, SiltRule, load_rules
from lorawatch.cli import database_url
from lorawatch.cmd_rules import rules_path
from lorawatch.settings import Settings
from store import queries


def _priority(args: argparse.Namespace, settings: Settings) -> int:
    rules = load_rules(rules_path(settings))
    with psycopg.connect(database_url(settings)) as conn:
        gullies = [d for d in queries.devices(conn) if d.kind == "gully"]
        rows = conn.execute("SELECT rule, subject, state FROM rule_state WHERE subject LIKE 'device:%'").fetchall()
        open_ = conn.execute(
            "SELECT device_id, category FROM alerts WHERE state <> 'resolved' AND category IN ('silt', 'blockage')"
        ).fetchall()
    by_ref = {f"device:{d.id}": d for d in gullies}
    silt: dict[str, tuple[SiltRule, dict[str, Any]]] = {}
    blocked: dict[str, tuple[BlockageRule, dict[str, Any]]] = {}
    for name, subject, state in rows:
        device = by_ref.get(subject)
        if device is None:
            continue
        rule = next((r for r in rules.rules_for(device) if r.name == name), None)
        if isinstance(rule, SiltRule):
            silt[device.device_id] = (rule, state)
        elif isinstance(rule, BlockageRule):
            blocked[device.device_id] = (rule, state)
    categories: dict[str, set[str]] = {}
    for device_id, category in open_:
        categories.setdefault(device_id, set()).add(category)
    ranked = rank(((d.device_id, d.name) for d in gullies), silt, blocked, categories)[: args.limit]
    if args.json:
        print(json.dumps([p.as_json() for p in ranked], indent=2))
        return 0
    print(f"{'rank':>4} {'device':<16} {'score':>6} {'open':<15} {'silt +mm':>8} {'mm/day':>7} {'drain min':>9}  name")
    for i, p in enumerate(ranked, 1):
        flags = ",".join(c for c, on in (("blockage", p.blockage_open), ("silt", p.silt_open)) if on) or "-"
        evidence = f"{_n(p.silt_rise_mm):>8} {_n(p.silt_mm_per_day):>7} {_n(p.drain_time_min):>9}"
        print(f"{i:>4} {p.device_id:<16} {p.score:>6.1f} {flags:<15} {evidence}  {p.name or ''}")
    return 0


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gullies = sub.add_parser("gullies", help="gully maintenance: the cleanse-priority list")
    actions = gullies.add_subparsers(dest="gullies_command", metavar="ACTION", required=True)
    p = actions.add_parser("priority", help="gullies ranked by silt and blockage evidence", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_priority)
